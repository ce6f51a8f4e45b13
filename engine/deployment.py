"""Reading a DigitalOcean deployment: its phase, timing, version and failure.

Step 4 of the SOP polls a deployment until it is ACTIVE. The pure part of that
work lives here, apart from the Odoo model that records it, so it is tested
against real simulator deployments without a database:

* when to poll next (:func:`poll_interval`): a build takes minutes and the API
  budget is shared, so polls are sparse while the end is far and dense near it;
* how long earlier deployments took (:func:`expected_seconds`), which tells
  where "near the end" is;
* which SOP error a failed deployment is (:func:`failure_error`), from the
  deepest ERROR step of its progress and DigitalOcean's reason code;
* the DEPLOY_TIMEOUT error of a deployment that ran out of time.
"""

import re
import statistics
from datetime import datetime, timedelta, timezone

from . import appspec
from .errors import DeployError

# Polling of a DigitalOcean deployment, in seconds. A rollout (DEPLOYING) of
# App Platform lasts at least ~30 s, so a build polled at most every MAX_POLL
# seconds cannot jump from BUILDING to ACTIVE unseen; long before the expected
# end a build may be polled more rarely (MAX_EARLY_POLL).
MIN_POLL = 5.0
MAX_POLL = 30.0
MAX_EARLY_POLL = 40.0
DEPLOYING_POLL = 5.0
# SOP-DEPLOY-001 benchmarks: build and deploy take ~6.5 min. The expectation for an
# app with no history, so that a typical build is polled often only near its end.
SOP_EXPECTED_SECONDS = 390.0
BUILD_PHASES = ("UNKNOWN", "PENDING_BUILD", "BUILDING")
DEPLOY_PHASES = ("PENDING_DEPLOY", "DEPLOYING")
FAILED_PHASES = ("ERROR", "CANCELED", "SUPERSEDED")
# How DigitalOcean serializes an unset time.
ZERO_TIME = "0001-01-01T00:00:00Z"
# DigitalOcean reason codes of a failed progress step -> SOP code.
REASON_CODES = {
    "ImagePullFailed": "IMAGE_PULL_FAILURE",
    "BuildJobExitNonZero": "BUILD_FAILED",
    "DeployContainerExitNonZero": "DEPLOY_ERROR",
    "DeployContainerHealthChecksFailed": "HEALTH_CHECK_TIMEOUT",
}
# RFC 3339 date-time. Go writes up to nine fraction digits (RFC3339Nano); Python 3.10's
# fromisoformat reads neither those nor "Z", so the parts are read here.
_RFC3339_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))")
_GO_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")
_GO_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_time(value):
    """A DigitalOcean RFC 3339 time as an epoch float; None for empty or zero times."""
    if not value or value == ZERO_TIME:
        return None
    match = _RFC3339_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, utc, sign, off_h, off_m = match.groups()
    offset = timedelta(0) if utc else (1 if sign == "+" else -1) * timedelta(
        hours=int(off_h), minutes=int(off_m))
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute),
                          int(second), int((fraction or "0")[:6].ljust(6, "0")),
                          tzinfo=timezone(offset))
    except ValueError:
        return None
    return moment.timestamp()


def parse_duration(value):
    """Seconds of a Go duration string ("6m30s", "390s"); None when unreadable."""
    parts = _GO_DURATION_RE.findall(value or "")
    if not parts:
        return None
    return sum(float(number) * _GO_DURATION_UNITS[unit] for number, unit in parts)


def deployment_seconds(deployment):
    """How long a finished DigitalOcean deployment took from creation to ACTIVE.

    DigitalOcean's ``timing`` (build plus deploy) when it has both, else the
    span from creation to the last finished progress step.
    """
    timing = deployment.get("timing") or {}
    build = parse_duration(timing.get("build_total"))
    deploy = parse_duration(timing.get("deploying"))
    if build is not None and deploy is not None:
        return build + deploy
    created = parse_time(deployment.get("created_at"))
    ends = [parse_time(step.get("ended_at"))
            for step in (deployment.get("progress") or {}).get("steps") or []]
    ends = [end for end in ends if end]
    if created and ends:
        return max(ends) - created
    return None


def spec_version(spec, components=None):
    """The version a spec deploys: DO_DEPLOY_VERSION of its first image component, else
    that component's image tag.

    With ``components`` (names), the first image component among those: a
    deployment that retags some components only is known by their version, as
    the others keep their own. None when none of them is in the spec.
    """
    try:
        image_components = appspec.image_components(spec or {})
    except DeployError:
        return None
    if components:
        image_components = [item for item in image_components if item["name"] in components]
    for component in image_components:
        for key, kind in appspec.COMPUTE_KINDS:
            for item in (spec.get(key) or []):
                if kind == component["kind"] and item.get("name") == component["name"]:
                    for env in item.get("envs") or []:
                        if isinstance(env, dict) and env.get("key") == appspec.VERSION_ENV:
                            return env.get("value")
        return component["image"].get("tag")
    return None


def poll_interval(phase, elapsed, expected=None):
    """Seconds until the next poll of a DigitalOcean deployment.

    Deploying phases are short: poll every few seconds. While building, poll
    rarely when the end is far, and often when it is near: half of the time
    left until the expected end (from the app's earlier builds), within
    [MIN_POLL, MAX_EARLY_POLL]. Past the expected end the interval grows again
    with the overrun, so a build slower than usual does not cost a poll every
    few seconds, but stays within MAX_POLL, as it does without an expectation
    (then it grows with the elapsed time).
    """
    if phase in DEPLOY_PHASES:
        return DEPLOYING_POLL
    if expected and elapsed < expected:
        return min(MAX_EARLY_POLL, max(MIN_POLL, (expected - elapsed) / 2))
    gap = elapsed - expected if expected else elapsed
    return min(MAX_POLL, max(MIN_POLL, gap / 2))


def expected_seconds(history_deployments, exclude_id=None):
    """How long the app's deployments take to reach ACTIVE: the median over its history.

    ``history_deployments`` are deployments as ``list_deployments`` returns
    them. Only deployments that went ACTIVE count: ACTIVE ones, and SUPERSEDED
    ones without error steps (a newer deployment replaced them after they went
    live; one superseded while still building has error steps). Durations of
    zero are left out: an app's first deployment, made with the app, says
    nothing about builds. None when nothing is known.
    """
    seconds = [
        deployment_seconds(deployment) for deployment in history_deployments
        if deployment.get("id") != exclude_id
        and deployment.get("phase") in ("ACTIVE", "SUPERSEDED")
        and not (deployment.get("progress") or {}).get("error_steps")
    ]
    seconds = [value for value in seconds if value]
    return statistics.median(seconds) if seconds else None


def failed_progress_step(progress):
    """The deepest ERROR step of a deployment's progress, with its top-level group.

    The group ("build" or "deploy") says which log explains the failure.
    """
    def walk(steps, group):
        for item in steps or []:
            if item.get("status") != "ERROR":
                continue
            found = walk(item.get("steps"), group or item.get("name"))
            if found:
                return found
            return {**item, "group": group or item.get("name")}
        return None
    return walk(progress.get("steps"), None)


def failure_error(deployment):
    """The SOP error of a DigitalOcean deployment that ended in ERROR, CANCELED or SUPERSEDED.

    ERROR maps DigitalOcean's reason code (:data:`REASON_CODES`), else the
    failing group: BUILD_FAILED in the build, DEPLOY_ERROR in the rollout.
    A canceled or superseded deployment is a DEPLOY_ERROR: it never went live.
    ``details`` name the failing ``component`` and the ``log_type`` (BUILD or
    DEPLOY) whose log explains it; ``log_type`` is None when no log does
    (canceled, superseded).
    """
    phase = deployment.get("phase")
    if phase not in FAILED_PHASES:
        raise ValueError(f"deployment phase {phase!r} is not a failure")
    failed = failed_progress_step(deployment.get("progress") or {}) or {}
    reason = failed.get("reason") or {}
    group = failed.get("group")
    component = failed.get("component_name")
    details = {"phase": phase, "deployment_id": deployment.get("id"), "component": component,
               "step": failed.get("name"), "reason_code": reason.get("code"), "log_type": None}
    if phase != "ERROR":
        return DeployError("DEPLOY_ERROR", (
            "DigitalOcean canceled the deployment before it became active."
            if phase == "CANCELED" else
            "Another deployment of the app superseded this one before it became active."),
            details=details)
    code = REASON_CODES.get(reason.get("code")) or (
        "BUILD_FAILED" if group == "build" else "DEPLOY_ERROR")
    details["log_type"] = "BUILD" if group == "build" else "DEPLOY"
    message = reason.get("message") or f"The deployment failed in {group or 'its rollout'}."
    return DeployError(code, f"{component + ': ' if component else ''}{message}",
                       details=details)


def timeout_error(phase, elapsed, limit):
    """DEPLOY_TIMEOUT for a deployment still in ``phase`` after ``elapsed`` of ``limit`` s."""
    return DeployError("DEPLOY_TIMEOUT", (
        f"The deployment was still {phase} after {round(elapsed)} s (limit {limit} s)."),
        details={"phase": phase, "elapsed": elapsed, "limit": limit})
