"""Watching in-flight deployments through the app list, one call per page for all.

``GET /v2/apps`` returns every app of a token with its ``in_progress_deployment``
(phase, progress) and ``active_deployment``: one call per page of up to 200 apps
shows where every deployment of the token stands. A deployment is read on its
own (``GET .../deployments/{id}``: its spec, its failure, its step logs) only
when the list shows it changed phase or is no longer in progress. This module
decides which, from plain data; Odoo makes the calls.
"""

from dataclasses import dataclass

# Seconds between a watched deployment's own reads, when the list shows no change.
FALLBACK_POLL = 60.0
# The list says nothing about a deployment that is neither in progress nor
# active: it ended otherwise (failed, canceled, superseded), or has not started.
ENDED = "ENDED"


@dataclass(frozen=True)
class Sighting:
    """What the app list shows of one watched deployment."""

    phase: str          # its phase in the list, "ACTIVE", or ENDED
    progress: str       # "success_steps/total_steps", "" when the list gives none
    read: bool          # True: read the deployment on its own now


def index_apps(apps):
    """``{app id: app}`` of one or more pages of ``GET /v2/apps``."""
    return {app.get("id"): app for app in apps or () if isinstance(app, dict)}


def sight(app, deployment_id, last_phase):
    """Where deployment ``deployment_id`` of ``app`` (an entry of the list, or None
    when the app is missing from it) stands, and whether it must be read."""
    app = app or {}
    in_progress = app.get("in_progress_deployment") or {}
    if in_progress.get("id") == deployment_id:
        phase = in_progress.get("phase") or "UNKNOWN"
        return Sighting(phase, _counts(in_progress), phase != last_phase)
    active = app.get("active_deployment") or {}
    if active.get("id") == deployment_id:
        return Sighting("ACTIVE", _counts(active), True)
    pending = app.get("pending_deployment") or {}
    if pending.get("id") == deployment_id and pending.get("phase") in (
            "PENDING_BUILD", "PENDING_DEPLOY", "QUEUED"):
        phase = pending["phase"]
        return Sighting(phase, _counts(pending), phase != last_phase)
    return Sighting(ENDED, "", True)


def plan(apps, watched):
    """``{key: Sighting}`` for ``watched``, ``{key: (app id, deployment id, last
    phase)}``, from the pages of the app list ``apps``."""
    by_id = index_apps(apps)
    return {key: sight(by_id.get(app_id), deployment_id, last_phase)
            for key, (app_id, deployment_id, last_phase) in watched.items()}


def pages_needed(app_count, per_page=200):
    """Calls one tick of the list makes for ``app_count`` apps."""
    return max(1, -(-int(app_count) // per_page))


def _counts(entry):
    progress = entry.get("progress") or {}
    if not progress:
        return ""
    return f"{progress.get('success_steps', 0)}/{progress.get('total_steps', 0)}"
