"""Watching in-flight deployments through the app list, one call per page for all.

``GET /v2/apps`` returns every app of a token with its ``in_progress_deployment``
(phase, progress) and ``active_deployment``: one call per page of up to 200 apps
shows where every deployment of the token stands, its phase and progress
included. A deployment is read on its own (``GET .../deployments/{id}``: its
spec, its failure, its step logs) only when the list shows it ended (ACTIVE, or
no longer in progress) or before its first reading; a new phase in progress is
taken from the list. This module decides which, from plain data; Odoo makes the
calls.
"""

from dataclasses import dataclass

from .deployment import FAILED_PHASES

# Seconds between a watched deployment's own reads, when the list shows no change.
FALLBACK_POLL = 60.0
# The list says nothing about a deployment that is neither in progress nor
# active: it ended otherwise (failed, canceled, superseded), or has not started.
ENDED = "ENDED"
# Phases that end a deployment: it is read on its own when the list shows one.
END_PHASES = ("ACTIVE", *FAILED_PHASES)


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
        return Sighting(phase, _counts(in_progress), _must_read(phase, last_phase))
    active = app.get("active_deployment") or {}
    if active.get("id") == deployment_id:
        return Sighting("ACTIVE", _counts(active), True)
    pending = app.get("pending_deployment") or {}
    if pending.get("id") == deployment_id and pending.get("phase") in (
            "PENDING_BUILD", "PENDING_DEPLOY", "QUEUED"):
        phase = pending["phase"]
        return Sighting(phase, _counts(pending), _must_read(phase, last_phase))
    return Sighting(ENDED, "", True)


def _must_read(phase, last_phase):
    """A deployment in progress is read on its own before its first reading (its
    monitor records what it expects) and in a phase that ends it; a phase it moves
    on to in progress is only recorded (two reads saved per deployment: 200
    deployments on one token read themselves about 800 times)."""
    return last_phase is None or phase in END_PHASES


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
