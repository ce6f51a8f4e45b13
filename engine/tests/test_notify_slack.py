"""Slack messages, checked by a local incoming webhook against Block Kit's format."""

import json
import logging
from datetime import datetime, timedelta, timezone

import pytest

from engine import metrics
from engine.notify import delivery, slack
from engine.notify.events import EVENTS, DeploymentEvent
from engine.tests.notify_common import LINK, NOW, sample_event
from engine.tests.receivers import SLACK_MESSAGE, SlackReceiver, schema_errors


@pytest.fixture
def receiver():
    with SlackReceiver() as server:
        yield server


def event(kind="done", **values):
    return sample_event(kind, **{"duration": 487.0, **values})


def texts(message):
    """Every text of a message's blocks, in order."""
    found = []
    for block in message["blocks"]:
        if "text" in block:
            found.append(block["text"]["text"])
        found += [field["text"] for field in block.get("fields", [])]
        found += [element["text"]["text"] if isinstance(element.get("text"), dict)
                  else element["text"] for element in block.get("elements", [])]
    return found


@pytest.mark.parametrize("kind", EVENTS)
def test_every_event_is_accepted_by_the_webhook(receiver, kind):
    code = "HEALTH_CHECK_FAIL" if kind in ("failed", "rolled_back", "rollback_failed") else None
    message = slack.deployment_message(event(kind, code=code, message="Two checks failed."))
    result = slack.send(receiver.webhook_url(), message, now=NOW)
    assert result.ok, (result, receiver.errors)
    assert (result.status, result.answer, result.retry_at) == (200, "ok", None)
    assert receiver.received[0]["json"] == message
    assert receiver.received[0]["headers"]["Content-Type"].startswith("application/json")
    assert message["text"].startswith(slack.EVENT_HEADLINES[kind][1])


def test_a_message_shows_app_tag_task_who_duration_code_and_link():
    message = slack.deployment_message(event(
        "failed", code="HEALTH_CHECK_FAIL", message="The health check failed twice.",
        previous_version="v1.2.2", rollback="DEP/2025/0043", app_url="https://shop.example.com"))
    assert [block["type"] for block in message["blocks"]] == [
        "section", "section", "section", "context", "actions", "divider"]
    shown = "\n".join(texts(message))
    for expected in ("*Deployment failed: shop (production) v1.2.3*", "DEP/2025/0042",
                     "*App*\nshop (production)", "*Tag*\n`v1.2.3`",
                     "*Previous version*\n`v1.2.2`", "*Task*\nCheckout redesign",
                     "*By*\nAnn Lee", "*Duration*\n8 min 7 s",
                     "*Code*\n`HEALTH_CHECK_FAIL` (critical)", "*Rollback*\nDEP/2025/0043",
                     "*HEALTH_CHECK_FAIL*: The health endpoint did not answer OK.",
                     "_What to do:_ The deployment is rolled back",
                     "> The health check failed twice.",
                     "<!date^1762160400^{date_short_pretty} {time}|2025-11-03 09:00 UTC>",
                     "<https://shop.example.com|the app>"):
        assert expected in shown, expected
    button = message["blocks"][4]["elements"][0]
    assert button == {"type": "button", "text": {"type": "plain_text", "text": "Open deployment"},
                      "url": LINK, "action_id": "open_deployment"}
    assert message["text"] == ("Deployment failed: shop (production) v1.2.3 (DEP/2025/0042) "
                               "HEALTH_CHECK_FAIL")
    assert schema_errors(SLACK_MESSAGE, message) == []


def test_a_minimal_event_has_no_empty_fields_or_button():
    message = slack.deployment_message(DeploymentEvent(
        "started", deployment="DEP/1", app="shop", environment="staging"))
    assert [block["type"] for block in message["blocks"]] == ["section", "section", "divider"]
    assert message["blocks"][1]["fields"] == [
        {"type": "mrkdwn", "text": "*App*\nshop (staging)"}]
    assert schema_errors(SLACK_MESSAGE, message) == []


def test_user_text_cannot_inject_links_or_mentions():
    message = slack.deployment_message(event(
        "failed", task="<!channel> & <https://evil.example|click>",
        message="<@U123> broke it", requested_by="Bob <bob@example.com>"))
    shown = "\n".join(texts(message))
    assert "<!channel>" not in shown and "<@U123>" not in shown
    assert "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;" in shown
    assert "Bob &lt;bob@example.com&gt;" in shown


def test_long_texts_stay_within_slacks_limits(receiver):
    message = slack.deployment_message(event(
        "failed", code="API_ERROR", message="<&>" * 5000 + "\nsecond line", task="t" * 5000,
        tag="v" * 300, app="a" * 300, link="https://odoo.example.com/" + "x" * 3000))
    failure = message["blocks"][2]["text"]["text"]
    # As long as it can be without cutting an escaped character in half.
    assert slack.MAX_SECTION_TEXT - 5 < len(failure) <= slack.MAX_SECTION_TEXT
    assert failure.endswith("&gt;…")
    fields = message["blocks"][1]["fields"]
    assert all(len(field["text"]) <= slack.MAX_FIELD_TEXT for field in fields)
    assert fields[0]["text"] == "*App*\n" + "a" * 199 + "…"
    assert not any(block["type"] == "actions" for block in message["blocks"])  # URL too long
    assert len(message["text"]) <= slack.MAX_FALLBACK_TEXT
    assert slack.send(receiver.webhook_url(), message).ok, receiver.errors


def test_tokens_in_a_message_are_redacted():
    message = slack.deployment_message(event(
        "failed", message="curl -H 'Authorization: Bearer dop_v1_abcdef0123456789' failed"))
    assert "abcdef0123456789" not in json.dumps(message)


def test_an_aware_time_is_shown_in_utc():
    moment = datetime(2025, 11, 3, 10, 0, tzinfo=timezone(timedelta(hours=1)))
    message = slack.deployment_message(event(occurred_at=moment))
    assert "|2025-11-03 09:00 UTC>" in "\n".join(texts(message))


@pytest.mark.parametrize(("action", "headline"), [
    (metrics.RAISE_WARNING, ":warning: *Warning: Deployment failure rate is 4.0 %*"),
    (metrics.RAISE_CRITICAL, ":red_circle: *Critical: Deployment failure rate is 4.0 %*"),
    (metrics.ESCALATE, ":red_circle: *Now critical: Deployment failure rate is 4.0 %*"),
    (metrics.CLEAR, ":white_check_mark: *Back to normal: Deployment failure rate is 4.0 %*"),
])
def test_alert_messages_are_accepted(receiver, action, headline):
    decision = metrics.AlertDecision("failure_rate", ("app", 7), 0.04, "warning", "ok",
                                     "warning", action)
    message = slack.alert_message(decision, scope_label="app shop <prod>", link=LINK)
    assert message["blocks"][0]["text"]["text"] == f"{headline} for app shop &lt;prod&gt;"
    shown = "\n".join(texts(message))
    for expected in ("*Value*\n4.0 %", "*Warning*\n&gt; 2.0 %", "*Critical*\n&gt; 5.0 %",
                     "*SOP action*\nReview deployment logs", "State: ok → warning"):
        assert expected in shown
    assert slack.send(receiver.webhook_url(), message).ok, receiver.errors


def test_alert_message_of_a_count_and_a_time():
    health = metrics.AlertDecision("health_check_failures", "all", 2, "critical", "ok",
                                   "critical", metrics.RAISE_CRITICAL)
    shown = "\n".join(texts(slack.alert_message(health, scope_label="all apps")))
    assert "*Warning*\n≥ 1" in shown and "*Critical*\n≥ 2" in shown
    timing = metrics.AlertDecision("deployment_time", "all", 615.0, "warning", "ok",
                                   "warning", metrics.RAISE_WARNING)
    shown = "\n".join(texts(slack.alert_message(timing, scope_label="all apps")))
    assert "*Value*\n10 min 15 s" in shown and "*Critical*\n&gt; 15 min 0 s" in shown


def test_a_decision_without_action_is_not_a_message():
    quiet = metrics.AlertDecision("failure_rate", "all", 0.0, "ok", "ok", "ok", None)
    with pytest.raises(ValueError, match="nothing to notify"):
        slack.alert_message(quiet, scope_label="all apps")


# --- the webhook's answers -------------------------------------------------------------

def test_an_invalid_payload_is_permanent(receiver):
    result = slack.send(receiver.webhook_url(), {"text": "hi", "blocks": [{"type": "video"}]})
    assert (result.outcome, result.status, result.answer) == ("permanent", 400, "invalid_payload")
    assert result.retry_at is None and result.gave_up


def test_a_revoked_or_unknown_webhook_is_permanent(receiver):
    message = slack.deployment_message(event())
    revoked = slack.send(receiver.webhook_url("wrongTOKEN123"), message)
    assert (revoked.outcome, revoked.status, revoked.answer) == (
        "permanent", 403, "invalid_token")
    unknown = slack.send(f"{receiver.url}/services/nothing", message)
    assert (unknown.outcome, unknown.status, unknown.answer) == ("permanent", 404, "no_service")


def test_rate_limited_is_retried_no_sooner_than_retry_after(receiver):
    receiver.throttle_next(retry_after=120)
    policy = delivery.RetryPolicy(base_seconds=10, max_attempts=5)
    result = slack.send(receiver.webhook_url(), slack.deployment_message(event()),
                        now=NOW, policy=policy)
    assert (result.outcome, result.status, result.answer) == ("retryable", 429, "rate_limited")
    assert result.retry_in == 120.0
    assert result.retry_at == NOW + timedelta(seconds=120)
    again = slack.send(receiver.webhook_url(), slack.deployment_message(event()),
                       attempt=2, now=NOW, policy=policy)
    assert again.ok


def test_the_webhook_url_never_shows(receiver, caplog):
    url = receiver.webhook_url()
    receiver.fail_next(500, f"rollup_error while posting to {url}")
    with caplog.at_level(logging.INFO, logger="engine.notify.delivery"):
        failed = slack.send(url, slack.deployment_message(event()))
        refused = slack.send(receiver.webhook_url("otherSecretToken9"),
                             slack.deployment_message(event()))
    assert failed.outcome == "retryable"
    shown = repr(failed) + repr(failed.to_dict()) + repr(refused) + caplog.text
    assert receiver.token not in shown and "otherSecretToken9" not in shown
    assert "/services/" not in shown
    assert failed.host == "127.0.0.1"


def test_a_test_message_is_accepted_and_clearly_a_test(receiver):
    message = slack.test_message("Slack #deployments", requested_by="Max <Manager>",
                                 link=LINK, occurred_at=NOW)
    assert slack.send(receiver.webhook_url(), message, now=NOW).ok, receiver.errors
    assert message["text"] == "Test message from do_deploy: Slack #deployments (no deployment)"
    shown = "\n".join(texts(message))
    assert ":test_tube: *Test message from do_deploy* · Slack #deployments" in shown
    assert "Max &lt;Manager&gt; checked that deployment notifications reach this channel." in shown
    assert "No deployment happened; nothing needs doing." in shown
    assert message["blocks"][-2]["elements"][0]["url"] == LINK
