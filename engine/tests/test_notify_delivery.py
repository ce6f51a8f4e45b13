"""One delivery attempt: bounded in time, classified, retried with backoff, secrets hidden."""

import logging
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from engine import urls
from engine.notify import delivery
from engine.tests.receivers import (
    HangingReceiver,
    SlackReceiver,
    TricklingReceiver,
    wait_until,
)

NOW = datetime(2025, 11, 3, 9, 0)
MESSAGE = {"text": "hello", "blocks": [{"type": "divider"}]}


class Bounds:
    """A stand-in for ``random`` whose uniform() gives its lower or upper bound."""

    def __init__(self, upper):
        self.upper = upper

    def uniform(self, low, high):
        return high if self.upper else low


@pytest.fixture
def slack_receiver():
    with SlackReceiver() as server:
        yield server


def workers():
    return [t for t in threading.enumerate() if t.name == "do_deploy-notify" and t.is_alive()]


# --- time ------------------------------------------------------------------------------

def test_a_receiver_hanging_30_s_holds_the_caller_no_longer_than_the_timeout():
    with HangingReceiver(hang_seconds=30) as receiver:
        start = time.monotonic()
        result = delivery.deliver(receiver.url + "/hook", MESSAGE, timeout=1.0, now=NOW)
        elapsed = time.monotonic() - start
        assert elapsed < 1.5
        assert len(receiver.received) == 1  # it did get the request
    assert (result.outcome, result.status) == ("retryable", None)
    # The worker's read timeout (0.9 s) usually ends it first; else the caller's deadline.
    assert result.error in ("No answer within 1 s.", "No complete answer within 1 s.")
    assert result.code == "NOTIFICATION_RECEIVER_UNAVAILABLE"
    assert result.retry_at is not None
    wait_until(lambda: not workers())  # the worker timed out by itself: nothing left behind


def test_the_default_timeout_bounds_a_hanging_receiver():
    with HangingReceiver(hang_seconds=30) as receiver:
        start = time.monotonic()
        result = delivery.deliver(receiver.url, MESSAGE)
        assert time.monotonic() - start < delivery.TIMEOUT + 0.5
    assert result.outcome == "retryable"


def test_a_trickling_receiver_is_cut_at_the_deadline():
    with TricklingReceiver(interval=0.1) as receiver:
        start = time.monotonic()
        result = delivery.deliver(receiver.url, MESSAGE, timeout=0.8, now=NOW)
        elapsed = time.monotonic() - start
    assert 0.7 < elapsed < 1.3
    assert (result.outcome, result.error) == ("retryable", "No complete answer within 0.8 s.")
    assert result.code == "NOTIFICATION_RECEIVER_UNAVAILABLE"


def test_a_connect_timeout_is_retryable(syn_dropping_url):
    start = time.monotonic()
    result = delivery.deliver(syn_dropping_url, MESSAGE, timeout=1.0)
    elapsed = time.monotonic() - start
    assert elapsed < 1.5
    assert (result.outcome, result.code) == ("retryable", "NOTIFICATION_RECEIVER_UNAVAILABLE")
    assert result.error in ("No connection within 1 s.", "No complete answer within 1 s.")


def test_a_refused_connection_is_retryable(closed_port):
    result = delivery.deliver(f"http://127.0.0.1:{closed_port}/services/T1/B1/secretTOKEN",
                              MESSAGE, now=NOW)
    assert (result.outcome, result.error) == ("retryable",
                                              "The connection to the receiver failed.")
    assert result.code == "NOTIFICATION_RECEIVER_UNAVAILABLE"
    assert "secretTOKEN" not in repr(result)


# --- outcomes --------------------------------------------------------------------------

UNAVAILABLE = "NOTIFICATION_RECEIVER_UNAVAILABLE"
REJECTED = "NOTIFICATION_REJECTED"


@pytest.mark.parametrize(("status", "outcome", "code"), [
    (200, "ok", None), (201, "ok", None), (202, "ok", None), (204, "ok", None),
    (408, "retryable", UNAVAILABLE), (425, "retryable", UNAVAILABLE),
    (429, "retryable", "NOTIFICATION_RATE_LIMITED"), (500, "retryable", UNAVAILABLE),
    (502, "retryable", UNAVAILABLE), (503, "retryable", UNAVAILABLE),
    (400, "permanent", REJECTED), (401, "permanent", REJECTED), (403, "permanent", REJECTED),
    (404, "permanent", REJECTED), (410, "permanent", REJECTED), (413, "permanent", REJECTED),
    (301, "permanent", REJECTED),
])
def test_outcome_and_code_of_each_status(slack_receiver, status, outcome, code):
    slack_receiver.fail_next(status, "", {"Location": "https://elsewhere.example/"})
    result = delivery.deliver(slack_receiver.webhook_url(), MESSAGE, now=NOW)
    assert (result.outcome, result.status, result.code) == (outcome, status, code)
    assert (result.retry_at is not None) == (outcome == "retryable")
    assert (result.error is None) == (outcome == "ok")


def test_status_messages(slack_receiver):
    slack_receiver.fail_next(503, "busy")
    slack_receiver.fail_next(404, "no_service")
    slack_receiver.fail_next(302, "")
    slack_receiver.fail_next(400, "")
    url = slack_receiver.webhook_url()
    assert delivery.deliver(url, MESSAGE).error == (
        "The receiver answered HTTP 503; it may accept it later.")
    assert delivery.deliver(url, MESSAGE).error == (
        "The receiver refused the notification with HTTP 404: no_service.")
    assert delivery.deliver(url, MESSAGE).error == (
        "The receiver answered HTTP 302 (a redirect); give its final URL.")
    assert delivery.deliver(url, MESSAGE).error == (
        "The receiver refused the notification with HTTP 400.")


def test_a_refusal_quotes_the_receivers_reason_redacted(slack_receiver):
    """Slack's revoked webhook says invalid_token; its invalid payload, invalid_payload."""
    revoked = delivery.deliver(slack_receiver.webhook_url("revokedToken"), MESSAGE, now=NOW)
    assert (revoked.outcome, revoked.status, revoked.code, revoked.retry_at) == (
        "permanent", 403, "NOTIFICATION_REJECTED", None)
    assert revoked.error == "The receiver refused the notification with HTTP 403: invalid_token."
    invalid = delivery.deliver(slack_receiver.webhook_url(), {"text": ""}, now=NOW)
    assert (invalid.code, invalid.error) == (
        "NOTIFICATION_REJECTED",
        "The receiver refused the notification with HTTP 400: invalid_payload.")
    # A reason that echoes the webhook, or any token, is redacted; a long one is cut.
    slack_receiver.fail_next(400, {"message": f"bad hook {slack_receiver.webhook_url()}",
                                   "errors": ["blocks: too long", "dop_v1_" + "a" * 64]})
    slack_receiver.fail_next(410, "gone " * 100)
    echoed = delivery.deliver(slack_receiver.webhook_url(), MESSAGE, now=NOW)
    assert slack_receiver.token not in echoed.error and "a" * 64 not in echoed.error
    assert echoed.error.startswith("The receiver refused the notification with HTTP 400: bad "
                                   "hook ")
    assert "(blocks: too long; dop_v1_***)" in echoed.error
    long = delivery.deliver(slack_receiver.webhook_url(), MESSAGE, now=NOW)
    assert len(long.error) < delivery.MAX_REASON_CHARS + 60 and long.error.endswith("….")


def test_a_rate_limit_is_retried_after_the_time_the_receiver_asks(slack_receiver):
    slack_receiver.throttle_next(retry_after=600)
    slack_receiver.fail_next(429, "rate_limited")
    url = slack_receiver.webhook_url()
    asked = delivery.deliver(url, MESSAGE, now=NOW, rng=Bounds(upper=True))
    assert (asked.outcome, asked.code) == ("retryable", "NOTIFICATION_RATE_LIMITED")
    assert asked.error == ("The receiver is rate-limiting notifications (HTTP 429); it asked "
                           "to wait 600 s.")
    assert asked.retry_at == NOW + timedelta(seconds=600)
    unsaid = delivery.deliver(url, MESSAGE, now=NOW, rng=Bounds(upper=True))
    assert unsaid.error == "The receiver is rate-limiting notifications (HTTP 429)."
    assert unsaid.retry_in == 30  # the backoff's own delay


@pytest.mark.parametrize(("url", "outcome"), [
    ("", "permanent"),  # a channel without its webhook
    ("ftp://hooks.example.com/x", "permanent"),
    ("hooks.example.com/services/x", "permanent"),
    ("http://", "permanent"),
    ("http://[::1/services/T1/B1/secretTOKEN", "permanent"),
])
def test_unusable_urls_are_permanent(url, outcome):
    result = delivery.deliver(url, MESSAGE)
    assert (result.outcome, result.error, result.code) == (
        outcome, "The receiver's URL is not a valid http or https URL.",
        "NOTIFICATION_CHANNEL_INVALID")
    assert result.retry_at is None
    assert "secretTOKEN" not in repr(result)


def test_tls_refused_is_permanent(slack_receiver):
    url = slack_receiver.webhook_url().replace("http://", "https://")
    result = delivery.deliver(url, MESSAGE)
    assert (result.outcome, result.error) == ("permanent",
                                              "The receiver's TLS certificate was refused.")
    assert result.code == "NOTIFICATION_CHANNEL_INVALID"
    assert slack_receiver.token not in repr(result)


def test_a_guarded_session_refuses_this_servers_network(slack_receiver):
    result = delivery.deliver(slack_receiver.webhook_url(), MESSAGE,
                              session=urls.guarded_session())
    assert (result.outcome, result.code, result.retry_at) == ("permanent", "URL_NOT_ALLOWED", None)
    assert slack_receiver.received == []
    assert slack_receiver.token not in repr(result)
    allowed = delivery.deliver(slack_receiver.webhook_url(), MESSAGE,
                               session=urls.guarded_session(["127.0.0.1"]))
    assert allowed.ok


def test_an_unexpected_failure_is_retryable_and_says_only_its_type():
    class Broken:
        def post(self, url, **options):
            raise RuntimeError(f"exploded on {url}")

    result = delivery.deliver("https://hooks.example.com/services/T1/B1/secretTOKEN", MESSAGE,
                              session=Broken(), now=NOW)
    assert (result.outcome, result.error) == ("retryable", "The request failed (RuntimeError).")
    assert result.code == "NOTIFICATION_RECEIVER_UNAVAILABLE"
    assert result.host == "hooks.example.com"


def test_answers_are_kept_short_and_redacted(slack_receiver):
    slack_receiver.fail_next(500, "x" * 1000)
    slack_receiver.fail_next(500, {"errors": ["a", "b"]})
    slack_receiver.fail_next(500, "")
    slack_receiver.fail_next(500, f"token dop_v1_{'a' * 64} at {slack_receiver.webhook_url()}")
    url = slack_receiver.webhook_url()
    assert delivery.deliver(url, MESSAGE).answer == "x" * delivery.MAX_ANSWER_CHARS
    assert delivery.deliver(url, MESSAGE).answer == {"errors": ["a", "b"]}
    assert delivery.deliver(url, MESSAGE).answer is None
    echoed = delivery.deliver(url, MESSAGE).answer
    assert "a" * 64 not in echoed and slack_receiver.token not in echoed


def test_the_payload_is_sent_as_utf8_json(slack_receiver):
    delivery.deliver(slack_receiver.webhook_url(), {"text": "Déployé ✅", "blocks": []})
    received = slack_receiver.received[0]
    assert received["raw"] == '{"text": "Déployé ✅", "blocks": []}'.encode()
    assert received["headers"]["Content-Type"] == "application/json; charset=utf-8"
    assert received["headers"]["User-Agent"] == delivery.USER_AGENT


def test_results_are_logged_with_the_host_only(slack_receiver, caplog):
    slack_receiver.fail_next(503, "busy")
    with caplog.at_level(logging.INFO, logger="engine.notify.delivery"):
        delivery.deliver(slack_receiver.webhook_url(), MESSAGE, rng=Bounds(upper=True))
        delivery.deliver(slack_receiver.webhook_url(), MESSAGE)
    assert caplog.records[0].getMessage() == (
        "Notification to 127.0.0.1 not delivered (attempt 1, retryable, "
        "NOTIFICATION_RECEIVER_UNAVAILABLE): The receiver answered HTTP 503; it may accept it "
        "later. Next attempt in 30 s.")
    assert caplog.records[1].getMessage().startswith(
        "Notification to 127.0.0.1 delivered (attempt 1, HTTP 200, ")
    assert slack_receiver.token not in caplog.text


# --- backoff ---------------------------------------------------------------------------

def test_backoff_doubles_with_equal_jitter_up_to_its_cap():
    policy = delivery.RetryPolicy(base_seconds=30, factor=2, max_seconds=600, max_attempts=10)
    highest = [policy.delay(attempt, Bounds(upper=True)) for attempt in range(1, 8)]
    lowest = [policy.delay(attempt, Bounds(upper=False)) for attempt in range(1, 8)]
    assert highest == [30, 60, 120, 240, 480, 600, 600]
    assert lowest == [15, 30, 60, 120, 240, 300, 300]


def test_the_next_attempt_time_comes_from_the_backoff(slack_receiver):
    slack_receiver.fail_next(500, "", times=3)
    policy = delivery.RetryPolicy(base_seconds=10, max_attempts=3)
    results = [delivery.deliver(slack_receiver.webhook_url(), MESSAGE, attempt=attempt,
                                policy=policy, now=NOW, rng=Bounds(upper=True))
               for attempt in (1, 2, 3)]
    assert [r.retry_in for r in results] == [10, 20, None]
    assert [r.retry_at for r in results] == [NOW + timedelta(seconds=10),
                                             NOW + timedelta(seconds=20), None]
    assert [r.gave_up for r in results] == [False, False, True]
    assert [r.attempt for r in results] == [1, 2, 3]


def test_retry_after_as_a_date(slack_receiver):
    slack_receiver.fail_next(503, "", {"Retry-After": "Mon, 03 Nov 2025 09:10:00 GMT"})
    slack_receiver.fail_next(503, "", {"Retry-After": "soon"})
    slack_receiver.fail_next(503, "", {"Retry-After": "Mon, 03 Nov 2025 08:00:00 GMT"})
    slack_receiver.fail_next(503, "", {"Retry-After": "Mon, 03 Nov 2025 09:05:00 -0000"})
    aware_now = NOW.replace(tzinfo=timezone.utc)
    url = slack_receiver.webhook_url()
    upper = Bounds(upper=True)
    assert delivery.deliver(url, MESSAGE, now=NOW, rng=upper).retry_in == 600
    assert delivery.deliver(url, MESSAGE, now=NOW, rng=upper).retry_in == 30   # unreadable
    past = delivery.deliver(url, MESSAGE, now=aware_now, rng=upper)
    assert past.retry_in == 30 and past.retry_at == aware_now + timedelta(seconds=30)
    # "-0000": a time in UTC whose zone the sender does not know.
    assert delivery.deliver(url, MESSAGE, now=NOW, rng=upper).retry_in == 300


def test_without_now_the_retry_time_is_naive_utc(slack_receiver):
    slack_receiver.fail_next(503, "")
    before = datetime.now(timezone.utc).replace(tzinfo=None)
    result = delivery.deliver(slack_receiver.webhook_url(), MESSAGE, rng=Bounds(upper=False))
    assert result.retry_at.tzinfo is None
    assert before + timedelta(seconds=15) <= result.retry_at <= (
        datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(seconds=15))


def test_attempts_count_from_one():
    with pytest.raises(ValueError, match="from 1"):
        delivery.deliver("https://hooks.example.com/x", MESSAGE, attempt=0)


def test_url_secrets():
    assert delivery.url_secrets("https://hooks.slack.com/services/T01/B0123/abcDEF?x=1") == (
        "https://hooks.slack.com/services/T01/B0123/abcDEF?x=1", "/services/T01/B0123/abcDEF",
        "x=1", "services", "B0123", "abcDEF")
