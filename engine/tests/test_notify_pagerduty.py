"""PagerDuty events, checked by a local Events API v2 receiver against its documented format."""

import json
import logging
from datetime import datetime, timedelta, timezone

import pytest

from engine.notify import pagerduty
from engine.notify.events import EVENTS, DeploymentEvent
from engine.tests.notify_common import LINK, NOW, sample_event
from engine.tests.receivers import PAGERDUTY_EVENT, PagerDutyReceiver, schema_errors

ROUTING_KEY = "R0123456789abcdefABCDEF012345678"
INSTANCE = "3f2a9c1e-db-uuid"


@pytest.fixture
def receiver():
    with PagerDutyReceiver() as server:
        yield server


def event(kind, environment="production", **values):
    return sample_event(kind, **{"environment": environment, "previous_version": "v1.2.2",
                                 "rollback": "DEP/2025/0043", **values})


def test_a_production_rollback_triggers_then_resolves_one_alert(receiver):
    started = pagerduty.event_for(ROUTING_KEY, event("rollback_started", code="HEALTH_CHECK_FAIL",
                                                      message="Two health checks failed."),
                                  instance=INSTANCE)
    done = pagerduty.event_for(ROUTING_KEY, event("rolled_back"), instance=INSTANCE)
    key = "do_deploy:3f2a9c1e-db-uuid:DEP/2025/0042"
    assert started == {
        "routing_key": ROUTING_KEY, "event_action": "trigger", "dedup_key": key,
        "client": "do_deploy (Odoo)", "client_url": LINK,
        "links": [{"href": LINK, "text": "Deployment DEP/2025/0042"}],
        "payload": {
            "summary": "Production rollback: shop (production) v1.2.3 back to v1.2.2, "
                       "deployment DEP/2025/0042: HEALTH_CHECK_FAIL (Two health checks failed.)",
            "source": "shop (production)", "severity": "critical", "component": "shop",
            "group": "production", "class": "HEALTH_CHECK_FAIL",
            "timestamp": "2025-11-03T09:00:00Z",
            "custom_details": {
                "deployment": "DEP/2025/0042", "rollback": "DEP/2025/0043", "app": "shop",
                "environment": "production", "tag": "v1.2.3", "previous_version": "v1.2.2",
                "task": "Checkout redesign", "requested_by": "Ann Lee",
                "code": "HEALTH_CHECK_FAIL", "message": "Two health checks failed."},
        },
    }
    assert done == {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": key}
    for message in (started, done):
        result = pagerduty.send(message, url=receiver.enqueue_url)
        assert result.ok, (result, receiver.errors)
        assert result.status == 202
        assert result.answer == {"status": "success", "message": "Event processed",
                                 "dedup_key": key}
    assert [r["json"] for r in receiver.received] == [started, done]


def test_a_failed_rollback_triggers_again_as_critical(receiver):
    message = pagerduty.event_for(ROUTING_KEY, event("rollback_failed", code="DEPLOY_ERROR",
                                                     app_url="https://shop.example.com/"),
                                  instance=INSTANCE)
    assert message["event_action"] == "trigger"
    assert message["dedup_key"] == "do_deploy:3f2a9c1e-db-uuid:DEP/2025/0042"
    assert message["payload"]["severity"] == "critical"
    assert message["payload"]["source"] == "shop.example.com"
    assert message["payload"]["summary"].startswith("Rollback failed: shop (production)")
    assert pagerduty.send(message, url=receiver.enqueue_url).ok, receiver.errors


@pytest.mark.parametrize(("code", "severity"), [
    ("DATABASE_CONNECTION_ERROR", "critical"),   # SOP critical
    ("ENDPOINT_404", "error"),                   # SOP high
    ("PERFORMANCE_DEGRADATION", "warning"),      # SOP medium
    ("TASK_NOT_FOUND", "info"),                  # low
    (None, "error"),                             # a manual rollback: high
])
def test_severity_follows_the_sops(receiver, code, severity):
    message = pagerduty.event_for(ROUTING_KEY, event("rollback_started", code=code),
                                  instance=INSTANCE)
    assert message["payload"]["severity"] == severity
    assert message["payload"]["class"] == (code or "rollback")
    assert pagerduty.send(message, url=receiver.enqueue_url).ok, receiver.errors


def test_severity_map_covers_every_sop_severity():
    from engine.error_catalogue import SEVERITIES
    assert set(pagerduty.SEVERITY_FROM_SOP) == set(SEVERITIES)


@pytest.mark.parametrize("kind", [kind for kind in EVENTS
                                  if kind not in ("rollback_started", "rolled_back",
                                                  "rollback_failed")])
def test_only_rollbacks_page(kind):
    assert pagerduty.event_for(ROUTING_KEY, event(kind), instance=INSTANCE) is None


def test_staging_rollbacks_do_not_page():
    for kind in ("rollback_started", "rolled_back", "rollback_failed"):
        assert pagerduty.event_for(ROUTING_KEY, event(kind, "staging"), instance=INSTANCE) is None


def test_a_minimal_trigger_is_valid(receiver):
    message = pagerduty.event_for(ROUTING_KEY, DeploymentEvent(
        "rollback_started", deployment="DEP/7", app="api", environment="production"),
        instance=INSTANCE)
    assert set(message) == {"routing_key", "event_action", "dedup_key", "payload", "client"}
    assert "timestamp" not in message["payload"]
    assert pagerduty.send(message, url=receiver.enqueue_url).ok, receiver.errors


def test_long_texts_stay_within_pagerdutys_limits(receiver):
    message = pagerduty.event_for(ROUTING_KEY, event(
        "rollback_started", message="x" * 5000, deployment="D" * 400), instance="i" * 100)
    assert len(message["payload"]["summary"]) == pagerduty.MAX_SUMMARY
    assert message["payload"]["summary"].endswith("…")
    assert len(message["payload"]["custom_details"]["message"]) == pagerduty.MAX_DETAIL
    assert len(message["dedup_key"]) == pagerduty.MAX_DEDUP_KEY
    assert pagerduty.send(message, url=receiver.enqueue_url).ok, receiver.errors


def test_dedup_keys_are_stable_and_distinct():
    assert pagerduty.dedup_key("db1", "DEP/1") == pagerduty.dedup_key("db1", "DEP/1")
    assert pagerduty.dedup_key("db1", "DEP/1") != pagerduty.dedup_key("db2", "DEP/1")
    long_a, long_b = (pagerduty.dedup_key("db", "x" * 300 + tail) for tail in "ab")
    assert long_a != long_b and len(long_a) == len(long_b) == 255


def test_an_aware_time_is_sent_in_utc():
    moment = datetime(2025, 11, 3, 10, 0, tzinfo=timezone(timedelta(hours=1)))
    message = pagerduty.event_for(ROUTING_KEY, event("rollback_started", occurred_at=moment),
                                  instance=INSTANCE)
    assert message["payload"]["timestamp"] == "2025-11-03T09:00:00Z"


def test_routing_key_shape():
    assert pagerduty.valid_routing_key(ROUTING_KEY)
    assert not pagerduty.valid_routing_key(ROUTING_KEY[:-1])
    assert not pagerduty.valid_routing_key(ROUTING_KEY[:-1] + "-")
    assert not pagerduty.valid_routing_key(None)


# --- the API's answers -----------------------------------------------------------------

def test_an_invalid_event_is_rejected_and_the_routing_key_never_shows(receiver, caplog):
    message = {"routing_key": ROUTING_KEY, "event_action": "trigger", "dedup_key": "k",
               "payload": {"summary": "s", "source": "x", "severity": "fatal"}}
    with caplog.at_level(logging.INFO, logger="engine.notify.delivery"):
        result = pagerduty.send(message, url=receiver.enqueue_url, now=NOW)
    assert (result.outcome, result.status, result.retry_at, result.code) == (
        "permanent", 400, None, "NOTIFICATION_REJECTED")
    assert result.answer["status"] == "invalid event"
    # PagerDuty's reason, with its list of errors, is quoted in the error.
    assert result.error.startswith("The receiver refused the notification with HTTP 400: Event "
                                   "object is invalid (payload/severity: 'fatal' is not one of")
    assert receiver.received[0]["json"]["routing_key"] == ROUTING_KEY  # sent, and only sent
    assert ROUTING_KEY not in json.dumps(result.to_dict(), default=str) + caplog.text


def test_a_malformed_routing_key_sends_nothing(receiver, caplog):
    short_key = "SECRETshortKEY0123456789"  # 24 characters: PagerDuty would refuse it
    for key in (short_key, ""):
        message = pagerduty.resolve(key, dedup_key="do_deploy:x:DEP/1")
        with caplog.at_level(logging.INFO, logger="engine.notify.delivery"):
            result = pagerduty.send(message, url=receiver.enqueue_url, attempt=2, now=NOW)
        assert (result.outcome, result.code, result.status, result.retry_at, result.attempt) == (
            "permanent", "NOTIFICATION_CHANNEL_INVALID", None, None, 2)
        assert result.error == "The channel has no valid integration key (32 letters and digits)."
    assert receiver.received == []
    assert short_key not in json.dumps(result.to_dict(), default=str) + caplog.text


def test_an_echoed_routing_key_is_hidden(receiver):
    receiver.fail_next(400, {"status": "invalid event", "message": f"bad key {ROUTING_KEY}"})
    message = pagerduty.resolve(ROUTING_KEY, dedup_key="k")
    result = pagerduty.send(message, url=receiver.enqueue_url)
    assert result.answer == {"status": "invalid event", "message": "bad key ***"}


def test_a_trigger_without_payload_is_refused_by_the_receiver(receiver):
    broken = {"routing_key": ROUTING_KEY, "event_action": "trigger", "dedup_key": "k"}
    assert schema_errors(PAGERDUTY_EVENT, broken) == ["(root): 'payload' is a required property"]
    assert pagerduty.send(broken, url=receiver.enqueue_url).outcome == "permanent"


def test_throttled_is_retryable(receiver):
    receiver.throttle_next()
    message = pagerduty.event_for(ROUTING_KEY, event("rolled_back"), instance=INSTANCE)
    result = pagerduty.send(message, url=receiver.enqueue_url, now=NOW)
    assert (result.outcome, result.status, result.code) == (
        "retryable", 429, "NOTIFICATION_RATE_LIMITED")
    assert result.answer["status"] == "throttle event"
    assert 15 <= result.retry_in <= 30  # first attempt: 30 s with equal jitter
    assert pagerduty.send(message, url=receiver.enqueue_url, attempt=2).ok


def test_a_test_alert_is_info_marked_and_resolvable(receiver):
    message = pagerduty.test_event(ROUTING_KEY, "PagerDuty on-call", instance=INSTANCE,
                                   requested_by="Ann Lee", link=LINK, occurred_at=NOW)
    assert message["payload"]["severity"] == "info"
    assert message["payload"]["summary"].startswith(
        "[TEST] do_deploy test message for PagerDuty on-call, sent by Ann Lee")
    assert message["dedup_key"] == (
        "do_deploy:3f2a9c1e-db-uuid:test:PagerDuty on-call:2025-11-03T09:00:00Z")
    assert pagerduty.send(message, url=receiver.enqueue_url).ok, receiver.errors
    done = pagerduty.resolve(ROUTING_KEY, dedup_key=message["dedup_key"])
    assert pagerduty.send(done, url=receiver.enqueue_url).ok, receiver.errors
    assert [r["json"]["event_action"] for r in receiver.received] == ["trigger", "resolve"]
