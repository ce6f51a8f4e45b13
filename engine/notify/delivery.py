"""One attempt to deliver a notification, bounded in time, with a result to retry from.

A notification must never hold or fail a deployment, so :func:`deliver` makes
exactly one POST and returns a :class:`DeliveryResult` instead of raising: the
caller stores it as an attempt and, while ``retry_at`` is set, tries again then.

* **Time.** The exchange runs in a worker thread that the caller waits for at
  most ``timeout`` seconds (default :data:`TIMEOUT`, never above
  :data:`MAX_TIMEOUT`): DNS, connect, a receiver that accepts and never answers
  and one that trickles its answer byte by byte are all cut at the deadline. A
  worker left behind holds nothing the caller needs; against a silent receiver
  it ends at its own socket timeout, against a trickling one when the receiver
  stops.
* **Outcome.** 2xx is ``ok``. 408, 425, 429, 5xx, timeouts and connection
  failures are ``retryable`` (Slack and PagerDuty both say to retry those); any
  other answer (400 invalid payload, 403/404 revoked webhook, a redirect) and an
  unusable or refused URL are ``permanent``: the same request will fail again.
* **Code.** Every failure carries the error code a person acts on
  (:data:`STATUS_CODES`): the receiver refused it (NOTIFICATION_REJECTED, with
  the reason it gave), is rate-limiting (NOTIFICATION_RATE_LIMITED, retried
  after its Retry-After), is unavailable (NOTIFICATION_RECEIVER_UNAVAILABLE), or
  the channel cannot send at all (NOTIFICATION_CHANNEL_INVALID, URL_NOT_ALLOWED).
* **Backoff.** Attempt n waits min(max, base x factor^(n-1)) with equal jitter
  (half fixed, half random), and at least what the receiver's Retry-After asks;
  after ``max_attempts`` there is no next try.
* **Secrets.** Webhook URLs and routing keys are secrets. Results and log lines
  name the receiver's host only, never the URL, and every text taken from an
  exception or an answer goes through :func:`~engine.errors.redact` with them.
"""

import dataclasses
import email.utils
import json
import logging
import random
import threading
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import requests

from ..errors import DeployError, redact

_logger = logging.getLogger(__name__)

OK = "ok"
RETRYABLE = "retryable"
PERMANENT = "permanent"
# Seconds: the whole exchange by default, its upper bound, and the most connecting may take.
TIMEOUT = 5.0
MAX_TIMEOUT = 10.0
CONNECT_TIMEOUT = 3.0
# Connecting gets at most half the budget and each socket read 90 % of it, so that a
# refused connection or a silent receiver ends the worker itself, with its own reason,
# before the caller stops waiting; the caller's deadline catches the rest (a trickle).
CONNECT_SHARE = 0.5
READ_SHARE = 0.9
RETRYABLE_STATUSES = frozenset({408, 425, 429})
RATE_LIMITED_STATUS = 429
MAX_ANSWER_BYTES = 65536
MAX_ANSWER_CHARS = 300
# The receiver's reason quoted in an error: at most this long.
MAX_REASON_CHARS = 200
CHANNEL_INVALID = "NOTIFICATION_CHANNEL_INVALID"
REJECTED = "NOTIFICATION_REJECTED"
RATE_LIMITED = "NOTIFICATION_RATE_LIMITED"
UNAVAILABLE = "NOTIFICATION_RECEIVER_UNAVAILABLE"
USER_AGENT = "do_deploy-notify/1.0"
# Path segments of a URL at least this long are hidden too (Slack's webhook token is one);
# redact() ignores shorter secrets.
_SECRET_SEGMENT_CHARS = 4


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with equal jitter and a cap on attempts."""

    base_seconds: float = 30.0
    factor: float = 2.0
    max_seconds: float = 3600.0
    max_attempts: int = 6

    def delay(self, attempt, rng=random):
        """Seconds to wait after failed attempt ``attempt`` (1-based): between half and
        all of min(max_seconds, base_seconds x factor^(attempt-1))."""
        ceiling = min(self.max_seconds, self.base_seconds * self.factor ** (attempt - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


DEFAULT_POLICY = RetryPolicy()


@dataclasses.dataclass(frozen=True)
class DeliveryResult:
    """What one attempt gave, safe to store and show (no secret in any field).

    ``outcome`` is ok, retryable or permanent; ``status`` the HTTP status (None
    when no answer came); ``error`` a plain, redacted sentence; ``answer`` the
    receiver's answer (its JSON, or up to :data:`MAX_ANSWER_CHARS` of its text),
    redacted; ``code`` the error code of a failure (None when ``ok``).
    ``retry_in`` / ``retry_at`` (naive UTC, as Odoo stores
    datetimes, unless the caller's ``now`` was aware): when to try again, None when
    not to.
    """

    outcome: str
    attempt: int
    host: str
    status: int | None = None
    error: str | None = None
    answer: object = None
    code: str | None = None
    elapsed_ms: int = 0
    retry_in: float | None = None
    retry_at: datetime | None = None

    @property
    def ok(self):
        return self.outcome == OK

    @property
    def gave_up(self):
        """Failed with no further attempt: permanent, or out of attempts."""
        return not self.ok and self.retry_at is None

    def to_dict(self):
        return dataclasses.asdict(self)


def url_secrets(url):
    """The parts of a webhook URL to hide: the URL, its path, query and path segments."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not even a URL: it is hidden whole
        return (url,)
    segments = [segment for segment in parts.path.split("/")
                if len(segment) >= _SECRET_SEGMENT_CHARS]
    return tuple(part for part in (url, parts.path, parts.query, *segments) if part)


def _host(url):
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def _utc_now():
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _retry_after(headers, now):
    """Seconds the receiver asks to wait (Retry-After: seconds or an HTTP date), or 0."""
    value = (headers.get("Retry-After") or "").strip()
    if not value:
        return 0.0
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    reference = now if now.tzinfo else now.replace(tzinfo=timezone.utc)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max((when - reference).total_seconds(), 0.0)


def _answer(body, secrets):
    """The answer's JSON, or the start of its text; redacted either way."""
    text = redact(body.decode("utf-8", "replace"), secrets)
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, (dict, list)):
        return data
    return text[:MAX_ANSWER_CHARS] or None


def _post(http, url, body, timeouts, box):
    """The worker: one POST; its (status, headers, body) or its exception in ``box``."""
    try:
        response = http.post(
            url, data=body, allow_redirects=False, stream=True,
            headers={"Content-Type": "application/json; charset=utf-8",
                     "User-Agent": USER_AGENT},
            timeout=timeouts)
        with response:
            content = response.raw.read(MAX_ANSWER_BYTES, decode_content=True)
        box["answer"] = (response.status_code, response.headers, content)
    except Exception as exc:  # handed to the caller's thread, which classifies it
        box["error"] = exc


def _socket_timeouts(timeout):
    """(connect, read) socket timeouts within a budget of ``timeout`` seconds."""
    return min(CONNECT_TIMEOUT, timeout * CONNECT_SHARE), timeout * READ_SHARE


def _failure(exc, timeout):
    """(outcome, sentence, code) for an exception of the worker; never its own text,
    which names the URL."""
    if isinstance(exc, DeployError):
        return PERMANENT, redact(exc.message), exc.code
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return RETRYABLE, f"No connection within {timeout:g} s.", UNAVAILABLE
    if isinstance(exc, requests.exceptions.Timeout):
        return RETRYABLE, f"No answer within {timeout:g} s.", UNAVAILABLE
    if isinstance(exc, requests.exceptions.SSLError):
        return PERMANENT, "The receiver's TLS certificate was refused.", CHANNEL_INVALID
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
                        requests.exceptions.MissingSchema, ValueError)):
        return PERMANENT, "The receiver's URL is not a valid http or https URL.", CHANNEL_INVALID
    if isinstance(exc, requests.exceptions.ConnectionError):
        return RETRYABLE, "The connection to the receiver failed.", UNAVAILABLE
    return RETRYABLE, f"The request failed ({type(exc).__name__}).", UNAVAILABLE


def _reason(answer):
    """The receiver's own words in its answer (Slack: ``invalid_token``; PagerDuty: its
    ``message`` and ``errors``), on one line and short; ``answer`` is redacted already."""
    if isinstance(answer, dict):
        parts = [answer.get(key) for key in ("message", "error", "status")]
        text = next((part for part in parts if isinstance(part, str) and part), "")
        errors = answer.get("errors")
        if isinstance(errors, list) and errors:
            text = f"{text} ({'; '.join(map(str, errors))})" if text else "; ".join(
                map(str, errors))
    else:
        text = answer if isinstance(answer, str) else ""
    text = " ".join(text.split())
    if len(text) > MAX_REASON_CHARS:
        text = text[:MAX_REASON_CHARS - 1] + "…"
    return text


def _status_failure(status, answer, wait):
    """(outcome, sentence, code) for a non-2xx answer; ``wait``: the seconds its
    Retry-After asks."""
    if status == RATE_LIMITED_STATUS:
        asked = f"; it asked to wait {wait:.0f} s" if wait else ""
        return RETRYABLE, f"The receiver is rate-limiting notifications (HTTP 429){asked}.", (
            RATE_LIMITED)
    if status in RETRYABLE_STATUSES or status >= 500:
        return RETRYABLE, f"The receiver answered HTTP {status}; it may accept it later.", (
            UNAVAILABLE)
    if 300 <= status < 400:
        return PERMANENT, (f"The receiver answered HTTP {status} (a redirect); give its "
                           "final URL."), REJECTED
    reason = _reason(answer)
    return PERMANENT, (f"The receiver refused the notification with HTTP {status}"
                       + (f": {reason}." if reason else ".")), REJECTED


def not_sent(url, attempt, error, code):
    """The result of an attempt refused before any request (nothing to retry): a
    channel without what it needs, or a URL this server does not fetch."""
    result = DeliveryResult(PERMANENT, attempt, _host(url), error=redact(error, url_secrets(url)),
                            code=code)
    _log(result)
    return result


def deliver(url, payload, *, attempt=1, secrets=(), timeout=TIMEOUT, policy=DEFAULT_POLICY,
            session=None, now=None, rng=random):
    """POST ``payload`` as JSON to ``url`` once; a :class:`DeliveryResult`, never an
    exception for what the network or the receiver does.

    ``attempt`` is this attempt's number (1 for the first); ``secrets`` are texts
    to hide besides the URL's own parts (a routing key); ``session`` a
    ``requests`` session (e.g. :func:`engine.urls.guarded_session`, whose refusal
    gives a permanent URL_NOT_ALLOWED result), else a fresh one that ignores proxy
    variables; ``now`` the time ``retry_at`` counts from.
    """
    if attempt < 1:
        raise ValueError("attempts are counted from 1")
    timeout = min(max(float(timeout), 0.001), MAX_TIMEOUT)
    hidden = (*url_secrets(url), *secrets)
    host = _host(url)
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    http = session or requests.Session()
    if session is None:
        http.trust_env = False
    box = {}
    worker = threading.Thread(
        target=_post, args=(http, url, body, _socket_timeouts(timeout), box),
        name="do_deploy-notify", daemon=True)
    start = time.monotonic()
    worker.start()
    worker.join(timeout)
    elapsed_ms = round((time.monotonic() - start) * 1000)
    now = now or _utc_now()
    status = answer = code = None
    wait = 0.0
    if "answer" in box:
        status, headers, content = box["answer"]
        answer = _answer(content, hidden)
        if 200 <= status < 300:
            outcome, error = OK, None
        else:
            wait = _retry_after(headers, now)
            outcome, error, code = _status_failure(status, answer, wait)
    elif "error" in box:
        outcome, error, code = _failure(box["error"], timeout)
    else:
        outcome, error, code = RETRYABLE, f"No complete answer within {timeout:g} s.", UNAVAILABLE
    if session is None and not worker.is_alive():
        http.close()
    retry_in = retry_at = None
    if outcome == RETRYABLE and attempt < policy.max_attempts:
        retry_in = max(policy.delay(attempt, rng), wait)
        retry_at = now + timedelta(seconds=retry_in)
    result = DeliveryResult(outcome, attempt, host, status, redact(error, hidden), answer, code,
                            elapsed_ms, retry_in, retry_at)
    _log(result)
    return result


def _log(result):
    if result.ok:
        _logger.info("Notification to %s delivered (attempt %s, HTTP %s, %s ms).",
                     result.host, result.attempt, result.status, result.elapsed_ms)
        return
    _logger.warning("Notification to %s not delivered (attempt %s, %s, %s): %s%s", result.host,
                    result.attempt, result.outcome, result.code, result.error,
                    f" Next attempt in {result.retry_in:.0f} s." if result.retry_in else "")
