"""PagerDuty Events API v2: page the on-call engineer for production rollbacks.

SOP-DEPLOY-001 sends production rollbacks to PagerDuty. One alert per
deployment: a rollback that starts *triggers* it (dedup key of the deployment
being reverted), a rollback that completes *resolves* it, and a rollback that
fails triggers it again as critical, so the open alert says the app is in doubt.
Nothing else pages.

An event is ``POST /v2/enqueue`` JSON: ``routing_key`` (the 32-character
integration key: the secret), ``event_action`` trigger / acknowledge / resolve,
``dedup_key`` (at most 255 characters) and, for a trigger, ``payload`` with
``summary`` (at most 1,024), ``source``, ``severity`` (critical, error, warning,
info), ``timestamp``, ``component``, ``group``, ``class`` and ``custom_details``,
plus ``links``. PagerDuty answers 202 ``{"status": "success", "message": "Event
processed", "dedup_key": ...}``, 400 for an invalid event, 429 when throttled.
"""

import hashlib
from datetime import timezone
from urllib.parse import urlsplit

from ..errors import redact
from . import delivery
from .events import ROLLBACK_FAILED, ROLLBACK_STARTED, ROLLED_BACK, TEST

ENQUEUE_URL = "https://events.pagerduty.com/v2/enqueue"
ROUTING_KEY_LENGTH = 32
MAX_DEDUP_KEY = 255
MAX_SUMMARY = 1024
MAX_DETAIL = 1000
TRIGGER = "trigger"
ACKNOWLEDGE = "acknowledge"
RESOLVE = "resolve"
# A test alert's severity: the lowest, so that a service's urgency rules page nobody for it.
TEST_SEVERITY = "info"
# The SOP's severities (error catalogue) as PagerDuty's.
SEVERITY_FROM_SOP = {"critical": "critical", "high": "error", "medium": "warning",
                     "low": "info"}
CLIENT = "do_deploy (Odoo)"
DEDUP_PREFIX = "do_deploy"
ELLIPSIS = "…"


def valid_routing_key(key):
    """Whether ``key`` has the shape of an integration key (32 letters and digits),
    for a settings form; the key itself is never echoed."""
    return isinstance(key, str) and len(key) == ROUTING_KEY_LENGTH and key.isalnum()


def dedup_key(instance, deployment):
    """The dedup key of ``deployment`` (its reference) on Odoo database ``instance``
    (e.g. its uuid, so two databases never share an alert): stable, at most 255
    characters (a long one is shortened with a hash of the whole)."""
    key = f"{DEDUP_PREFIX}:{instance}:{deployment}"
    if len(key) <= MAX_DEDUP_KEY:
        return key
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return f"{key[:MAX_DEDUP_KEY - len(digest) - 1]}#{digest}"


def _cut(text, limit):
    text = str(text)
    return text if len(text) <= limit else text[:limit - len(ELLIPSIS)] + ELLIPSIS


def _timestamp(moment):
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _source(event):
    """The affected system: the app's host when known, else the app's name."""
    host = urlsplit(event.app_url).hostname if event.app_url else None
    return host or f"{event.app} ({event.environment})"


def _summary(event):
    verb = "Rollback failed" if event.event == ROLLBACK_FAILED else "Production rollback"
    summary = f"{verb}: {event.app} ({event.environment})"
    if event.tag:
        summary += f" {event.tag}"
    if event.previous_version:
        summary += f" back to {event.previous_version}"
    summary += f", deployment {event.deployment}"
    if event.code:
        summary += f": {event.code}"
    if event.message:
        summary += f" ({redact(event.message)})"
    return _cut(summary, MAX_SUMMARY)


def _details(event):
    details = {
        "deployment": event.deployment, "rollback": event.rollback, "app": event.app,
        "environment": event.environment, "tag": event.tag,
        "previous_version": event.previous_version, "task": event.task,
        "requested_by": event.requested_by, "code": event.code,
        "message": event.message and _cut(redact(event.message), MAX_DETAIL),
        "duration_seconds": event.duration,
    }
    return {name: value for name, value in details.items() if value is not None}


def trigger(routing_key, event, *, dedup_key):
    """A trigger event for a :class:`~.events.DeploymentEvent`; its severity is the
    event's SOP severity mapped by :data:`SEVERITY_FROM_SOP`."""
    payload = {
        "summary": _summary(event),
        "source": _source(event),
        "severity": SEVERITY_FROM_SOP[event.severity],
        "component": event.app,
        "group": event.environment,
        "class": event.code or "rollback",
        "custom_details": _details(event),
    }
    if event.occurred_at:
        payload["timestamp"] = _timestamp(event.occurred_at)
    message = {"routing_key": routing_key, "event_action": TRIGGER, "dedup_key": dedup_key,
               "payload": payload, "client": CLIENT}
    if event.link:
        message["client_url"] = event.link
        message["links"] = [{"href": event.link, "text": f"Deployment {event.deployment}"}]
    return message


def resolve(routing_key, *, dedup_key):
    """The resolve event of the alert ``dedup_key``."""
    return {"routing_key": routing_key, "event_action": RESOLVE, "dedup_key": dedup_key}


def test_event(routing_key, channel, *, instance, requested_by, link=None, occurred_at=None):
    """A channel's test: an ``info`` trigger marked [TEST], whose alert the caller
    resolves with :func:`resolve` of its ``dedup_key`` once it is accepted."""
    stamp = _timestamp(occurred_at) if occurred_at else ""
    payload = {
        "summary": _cut(f"[TEST] do_deploy test message for {channel}, sent by {requested_by}: "
                        "no deployment happened, nothing needs doing", MAX_SUMMARY),
        "source": "do_deploy", "severity": TEST_SEVERITY, "class": TEST,
        "custom_details": {"channel": channel, "requested_by": requested_by},
    }
    if stamp:
        payload["timestamp"] = stamp
    message = {"routing_key": routing_key, "event_action": TRIGGER,
               "dedup_key": dedup_key(instance, f"{TEST}:{channel}:{stamp}"),
               "payload": payload, "client": CLIENT}
    if link:
        message["client_url"] = link
    return message


def event_for(routing_key, event, *, instance):
    """The Events API v2 message for ``event``, or None when it does not page: a
    production rollback starting or failing triggers, one completing resolves."""
    if not event.production or event.event not in (ROLLBACK_STARTED, ROLLED_BACK,
                                                   ROLLBACK_FAILED):
        return None
    key = dedup_key(instance, event.deployment)
    if event.event == ROLLED_BACK:
        return resolve(routing_key, dedup_key=key)
    return trigger(routing_key, event, dedup_key=key)


def send(message, *, url=ENQUEUE_URL, **options):
    """Post an Events API v2 ``message`` once; a :class:`~.delivery.DeliveryResult`
    whose ``answer`` is PagerDuty's JSON (with the ``dedup_key``). The routing key
    is hidden from the result and the logs; without a valid one nothing is sent
    (NOTIFICATION_CHANNEL_INVALID). ``options`` are those of
    :func:`~.delivery.deliver`."""
    key = message.get("routing_key") or ""
    if not valid_routing_key(key):  # PagerDuty would refuse it: nothing is sent
        return delivery.not_sent(url, options.get("attempt", 1), (
            "The channel has no valid integration key (32 letters and digits)."),
            delivery.CHANNEL_INVALID)
    secrets = (*options.pop("secrets", ()), key)
    return delivery.deliver(url, message, secrets=secrets, **options)
