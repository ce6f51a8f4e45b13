"""HTTP, DNS and TLS checks of a deployed app (SOP steps 5, 6 and 7).

A check returns a :class:`CheckResult` instead of raising: the pipeline counts
consecutive health failures (one warns, two fail the step) and records every
timing. ``CheckResult.raise_for_result()`` turns a failure into a DeployError.

The URLs come from DigitalOcean and from app settings, so the HTTP client is
narrow on purpose: http and https only; redirects followed only on the same
host and port (or http to https on the same host), at most five and never
from https to http; one time budget for the whole exchange, enforced even
against a server that trickles bytes; at most 1 MB of body read. Requests go
direct: proxy variables and ~/.netrc are ignored unless the caller passes its
own ``session``. A session from :func:`engine.urls.guarded_session` that refuses
the address a URL reached gives a failed check with code URL_NOT_ALLOWED.

Results are stored where every Deployment User reads them, and an answer may
carry what its server knows. So a result says what came back (status, media
type, size, and the few fields a check reads, each quoted short), never the
text; a failed check logs a short, redacted excerpt of it on the server, for
the operator.
"""

import contextlib
import dataclasses
import datetime
import ipaddress
import json
import logging
import socket
import ssl
import threading
import time
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from .errors import DeployError, redact

_logger = logging.getLogger(__name__)
MAX_RESPONSE_BYTES = 1_048_576
MAX_REDIRECTS = 5
CONNECT_TIMEOUT = 5.0
ENDPOINT_TIMEOUT = 30.0
HEALTH_PATH = "/api/v1/health"
DEPLOYMENT_HEADER = "X-Deployment-ID"
ENDPOINT_KINDS = ("page", "static", "api")
ENDPOINT_CHECK_DEFAULTS = {
    "name": None, "path": None, "status": 200, "contains": None, "json_field": None,
    "json_value": None, "max_ms": None, "kind": "page",
}
# Failures that can clear by themselves: the same check may pass a bit later.
RETRYABLE_CODES = frozenset({
    "SERVICE_UNAVAILABLE", "RESPONSE_TIMEOUT", "LOAD_BALANCER_ERROR", "TRAFFIC_SWITCH_FAILED",
    "DNS_PROPAGATION_DELAY",
})

_HEALTHY_STATUSES = ("ok", "pass")
_DATABASE_UP = ("connected", "ok", "pass", "up")
_REDIRECT_STATUSES = (301, 302, 303, 307, 308)
_REQUEST_HEADERS = {
    "User-Agent": "do_deploy-check/1.0",
    # Compressed bodies would defeat the size cap; no-cache asks the CDN for the live answer.
    "Accept-Encoding": "identity",
    "Cache-Control": "no-cache",
}
_CHUNK_BYTES = 16384
# Of an answer's text, only the server log gets an excerpt; values a check reads from
# an answer (status, version, a JSON field) are quoted up to _VALUE_CHARS characters.
_EXCERPT_CHARS = 300
_VALUE_CHARS = 128
_SHOWN_CHARS = 40
_CONNECTION_PROBLEMS = (
    ("refused", "the connection was refused"),
    ("reset", "the connection was reset"),
    ("Name or service not known", "the host name does not resolve"),
    ("nodename nor servname", "the host name does not resolve"),
    ("RemoteDisconnected", "the server closed the connection without answering"),
)


@dataclasses.dataclass
class CheckResult:
    """Outcome of one check; ``code`` is an SOP error code when ``ok`` is false."""

    ok: bool
    code: str | None
    message: str
    status: int | None = None
    elapsed_ms: int | None = None
    data: dict = dataclasses.field(default_factory=dict)

    def to_dict(self):
        return dataclasses.asdict(self)

    def raise_for_result(self):
        """Return the result when the check passed, else raise its DeployError."""
        if self.ok:
            return self
        raise DeployError(
            self.code, self.message,
            details={"status": self.status, "elapsed_ms": self.elapsed_ms, **self.data},
            retryable=self.code in RETRYABLE_CODES,
        )


class _FetchError(Exception):
    """No usable answer; ``reason`` is url, unreachable, timeout, tls, redirect or refused."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclasses.dataclass
class _Answer:
    url: str
    status: int
    headers: dict
    body: bytes
    truncated: bool
    elapsed_ms: int

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        """The decoded JSON body, or None when the body is not complete JSON."""
        if self.truncated:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def excerpt(self):
        return redact(self.text[:_EXCERPT_CHARS])

    def summary(self):
        """What came back, without its text: media type and size in bytes."""
        media_type = str(self.headers.get("Content-Type") or "").split(";", 1)[0]
        return {"content_type": media_type.strip().lower()[:_SHOWN_CHARS * 2] or None,
                "bytes": len(self.body)}


def _capped(value):
    """A value read from an answer, for a result's data: strings cut at _VALUE_CHARS."""
    if isinstance(value, str) and len(value) > _VALUE_CHARS:
        return redact(value[:_VALUE_CHARS - 3]) + "..."
    return redact(value) if isinstance(value, str) else value


def _shown(value, quoted=True):
    """A value read from an answer, in a message: its repr (or text), cut at _SHOWN_CHARS."""
    text = repr(value) if quoted else str(value)
    return redact(text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS - 3] + "...")


def _url(base_url, path=""):
    """Join base URL and path, keeping the base's own path (an ingress may serve under one)."""
    base = base_url.strip()
    if "://" not in base:
        base = "https://" + base
    return base.rstrip("/") + "/" + path.lstrip("/") if path else base


def _origin(parts):
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def _check_url(url):
    try:
        parts = urlsplit(url)
        _origin(parts)
    except ValueError as exc:
        raise _FetchError("url", f"{redact(url)} is not a valid URL") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _FetchError("url", f"{redact(url)} is not an http or https URL")


def _redirect_target(current, location):
    """The URL a redirect points to, if it stays on the same host."""
    target = urljoin(current, location)
    _check_url(target)
    old_scheme, old_host, old_port = _origin(urlsplit(current))
    new_scheme, new_host, new_port = _origin(urlsplit(target))
    if new_host != old_host:
        raise _FetchError("redirect", f"it redirects to another host ({new_host})")
    if old_scheme == "https" and new_scheme == "http":
        raise _FetchError("redirect", "it redirects from https to plain http")
    if new_scheme == old_scheme and new_port != old_port:
        raise _FetchError("redirect", f"it redirects to another port ({new_port})")
    return target


def _describe(exc):
    text = str(exc)
    for needle, description in _CONNECTION_PROBLEMS:
        if needle in text:
            return description
    return "the connection failed"


def _shutdown(sock):
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _read_body(response, deadline):
    """Read at most MAX_RESPONSE_BYTES of the body before the deadline.

    A socket timeout only bounds each single read, so a watchdog shuts the
    socket at the deadline: a server trickling bytes cannot hold the check.
    """
    sock = getattr(response.raw.connection, "sock", None)
    watchdog = threading.Timer(max(deadline - time.monotonic(), 0.0), _shutdown, (sock,))
    watchdog.daemon = True
    watchdog.start()
    chunks, size = [], 0
    try:
        while size <= MAX_RESPONSE_BYTES:
            chunk = response.raw.read(_CHUNK_BYTES, decode_content=True)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        if time.monotonic() >= deadline:
            raise _FetchError("timeout", "the answer did not come within the time budget") from exc
        raise _FetchError("unreachable", "the connection broke while reading the answer") from exc
    finally:
        watchdog.cancel()
    return b"".join(chunks)[:MAX_RESPONSE_BYTES], size > MAX_RESPONSE_BYTES


def _get_once(http, url, start, deadline):
    # Past the deadline the request still goes out with a token timeout, so that
    # the answer is reported as a timeout by the usual paths below.
    remaining = max(deadline - time.monotonic(), 0.001)
    try:
        response = http.get(
            url, headers=_REQUEST_HEADERS, allow_redirects=False, stream=True,
            timeout=(min(CONNECT_TIMEOUT, remaining), remaining),
        )
    except requests.exceptions.ConnectTimeout as exc:
        raise _FetchError("unreachable", "the connection timed out") from exc
    except requests.exceptions.Timeout as exc:
        raise _FetchError("timeout", "no answer came within the time budget") from exc
    except requests.exceptions.SSLError as exc:
        raise _FetchError("tls", "its TLS certificate was refused") from exc
    except requests.exceptions.RequestException as exc:
        raise _FetchError("unreachable", _describe(exc)) from exc
    except DeployError as exc:
        # Only a session from engine.urls.guarded_session raises it: the address is refused.
        raise _FetchError("refused", exc.message) from exc
    with response:
        body, truncated = _read_body(response, deadline)
    if time.monotonic() > deadline:
        raise _FetchError("timeout", "the answer did not come within the time budget")
    elapsed_ms = round((time.monotonic() - start) * 1000)
    return _Answer(url, response.status_code, response.headers, body, truncated, elapsed_ms)


def _fetch(http, url, timeout, *, follow_redirects=True):
    """GET ``url`` within ``timeout`` seconds in all, following same-host redirects."""
    start = time.monotonic()
    deadline = start + timeout
    _check_url(url)
    for _hop in range(MAX_REDIRECTS + 1):
        answer = _get_once(http, url, start, deadline)
        location = answer.headers.get("Location")
        if not (follow_redirects and answer.status in _REDIRECT_STATUSES and location):
            return answer
        url = _redirect_target(url, location)
    raise _FetchError("redirect", f"it redirects more than {MAX_REDIRECTS} times")


@contextlib.contextmanager
def _http(session):
    if session is not None:
        yield session
        return
    with requests.Session() as http:
        http.trust_env = False
        yield http


def _fetch_failure(exc, codes, fallback, subject, data):
    code = {"tls": "SSL_CERTIFICATE_ERROR", "refused": "URL_NOT_ALLOWED", **codes}.get(
        exc.reason, fallback)
    return CheckResult(False, code, f"{subject} failed: {exc.message.rstrip('.')}.",
                       data={**data, "reason": exc.reason})


def _failure(code, message, answer, data):
    _logger.info("%s: %s answered HTTP %s; its answer begins %r", code, data.get("url"),
                 answer.status, answer.excerpt())
    return CheckResult(False, code, message, answer.status, answer.elapsed_ms,
                       {**data, "answer": answer.summary()})


def _success(message, answer, data):
    return CheckResult(True, None, message, answer.status, answer.elapsed_ms, data)


def _database_up(info):
    """True or False when the health answer says whether the database is reachable."""
    if "database" in info:
        value = info["database"]
        return value is True or (isinstance(value, str) and value.lower() in _DATABASE_UP)
    if "db_server_status" in info:  # Odoo's own /web/health?db_server_status=1
        return info["db_server_status"] is True
    return None


def check_health(base_url, *, path=HEALTH_PATH, budget_seconds=10.0, expected_version=None,
                 session=None):
    """Step 5: the health endpoint answers 200, status ok/pass, database up, within budget.

    A version other than ``expected_version`` is recorded in ``data`` but does
    not fail this check: which version serves traffic is step 6's question.
    """
    url = _url(base_url, path)
    data = {"url": redact(url)}
    with _http(session) as http:
        try:
            answer = _fetch(http, url, budget_seconds)
        except _FetchError as exc:
            return _fetch_failure(
                exc, {"unreachable": "SERVICE_UNAVAILABLE", "timeout": "RESPONSE_TIMEOUT"},
                "HEALTH_CHECK_FAIL", f"The health check of {data['url']}", data)
    payload = answer.json()
    info = payload if isinstance(payload, dict) else {}
    database = _database_up(info)
    data.update(deployment_id=_capped(answer.headers.get(DEPLOYMENT_HEADER)),
                version=_capped(info.get("version")), database=database)
    if expected_version is not None:
        data["version_matches"] = data["version"] == expected_version
    if database is False:
        return _failure("DATABASE_CONNECTION_ERROR",
                        f"The health endpoint {data['url']} reports that the app cannot reach "
                        f"its database (HTTP {answer.status}).", answer, data)
    if answer.status != 200:
        return _failure("HEALTH_CHECK_FAIL",
                        f"The health endpoint {data['url']} answered HTTP {answer.status} "
                        "instead of 200.", answer, data)
    if not isinstance(payload, dict):
        return _failure("HEALTH_CHECK_FAIL",
                        f"The health endpoint {data['url']} did not answer with a JSON object.",
                        answer, data)
    status = info.get("status")
    if not isinstance(status, str) or status.lower() not in _HEALTHY_STATUSES:
        return _failure("HEALTH_CHECK_FAIL",
                        f"The health endpoint {data['url']} reports status {_shown(status)}.",
                        answer, data)
    return _success(f"The health endpoint answered OK in {answer.elapsed_ms} ms.", answer, data)


def normalize_check(check):
    """Return an endpoint check with its defaults; raise ValueError if it cannot run."""
    if not isinstance(check, dict):
        raise ValueError(f"an endpoint check is a mapping, not {type(check).__name__}")
    unknown = sorted(set(check) - set(ENDPOINT_CHECK_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown endpoint check fields: {', '.join(unknown)}")
    normalized = {key: check[key] if check.get(key) is not None else default
                  for key, default in ENDPOINT_CHECK_DEFAULTS.items()}
    if not isinstance(normalized["path"], str) or not normalized["path"].startswith("/"):
        raise ValueError(f"an endpoint check needs a path starting with '/', not {check!r}")
    if normalized["kind"] not in ENDPOINT_KINDS:
        raise ValueError(f"endpoint check kind must be one of {', '.join(ENDPOINT_KINDS)}")
    status = normalized["status"]
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise ValueError(f"endpoint check status must be an HTTP status code, not {status!r}")
    max_ms = normalized["max_ms"]
    if max_ms is not None and (isinstance(max_ms, bool) or not isinstance(max_ms, (int, float))
                               or max_ms <= 0):
        raise ValueError(f"endpoint check max_ms must be a positive number, not {max_ms!r}")
    return normalized


def _json_field(payload, dotted):
    """(found, value) of a dotted field such as ``data.version`` or ``items.0.id``."""
    value = payload
    for part in dotted.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return False, None
    return True, value


def _check_endpoint(http, base_url, check, timeout_seconds):
    url = _url(base_url, check["path"])
    shown = redact(url)
    static = check["kind"] == "static"
    error_code = "STATIC_ASSET_MISSING" if static else "API_ERROR"
    data = {"url": shown, "path": check["path"], "kind": check["kind"], "name": check["name"]}
    try:
        answer = _fetch(http, url, timeout_seconds,
                        follow_redirects=not 300 <= check["status"] < 400)
    except _FetchError as exc:
        return _fetch_failure(exc, {"timeout": "PERFORMANCE_DEGRADATION"}, error_code,
                              f"The check of {shown}", data)
    if answer.status != check["status"]:
        if answer.status == 404:
            return _failure("STATIC_ASSET_MISSING" if static else "ENDPOINT_404",
                            f"{shown} was not found (HTTP 404).", answer, data)
        return _failure(error_code, f"{shown} answered HTTP {answer.status} instead of "
                        f"{check['status']}.", answer, data)
    if check["contains"] and check["contains"] not in answer.text:
        return _failure(error_code, f"The answer of {shown} does not contain "
                        f"{check['contains']!r}.", answer, data)
    if check["json_field"]:
        found, value = _json_field(answer.json(), check["json_field"])
        if not found:
            return _failure(error_code, f"The answer of {shown} has no JSON field "
                            f"{check['json_field']!r}.", answer, data)
        expected = check["json_value"]
        if expected is not None and value != expected and str(value) != str(expected):
            return _failure(error_code, f"The JSON field {check['json_field']!r} of {shown} is "
                            f"{_shown(value)}, not {expected!r}.", answer, data)
    if check["max_ms"] is not None and answer.elapsed_ms > check["max_ms"]:
        return _failure("PERFORMANCE_DEGRADATION",
                        f"{shown} answered in {answer.elapsed_ms} ms, over its "
                        f"{check['max_ms']} ms budget.", answer, data)
    return _success(f"{shown} answered as expected in {answer.elapsed_ms} ms.", answer, data)


def check_endpoints(base_url, checks, *, timeout_seconds=ENDPOINT_TIMEOUT, session=None):
    """Step 7: run each endpoint check, one CheckResult per check in order.

    Every check is validated before the first request (ValueError otherwise).
    A check whose expected status is a redirect (3xx) does not follow it.
    """
    checks = [normalize_check(check) for check in checks]
    with _http(session) as http:
        return [_check_endpoint(http, base_url, check, timeout_seconds) for check in checks]


def check_served_version(base_url, expected_version, expected_deployment_id=None, *,
                         path=HEALTH_PATH, timeout_seconds=10.0, session=None):
    """Step 6: the ingress serves ``expected_version`` (and deployment, when it says).

    The deployment id is compared only when the app sends ``X-Deployment-ID``;
    ``data["deployment_id_checked"]`` tells whether it did. Any answer other
    than 200 is the ingress failing: LOAD_BALANCER_ERROR.
    """
    url = _url(base_url, path)
    data = {"url": redact(url)}
    with _http(session) as http:
        try:
            answer = _fetch(http, url, timeout_seconds)
        except _FetchError as exc:
            return _fetch_failure(exc, {}, "LOAD_BALANCER_ERROR",
                                  f"Reading the served version from {data['url']}", data)
    payload = answer.json()
    served_version = payload.get("version") if isinstance(payload, dict) else None
    served_deployment = answer.headers.get(DEPLOYMENT_HEADER)
    data.update(version=_capped(served_version), deployment_id=_capped(served_deployment),
                deployment_id_checked=bool(expected_deployment_id and served_deployment))
    if answer.status != 200:
        return _failure("LOAD_BALANCER_ERROR",
                        f"The ingress answered HTTP {answer.status} for {data['url']}, so the "
                        "served version is unknown.", answer, data)
    if expected_version is not None and served_version != expected_version:
        return _failure("TRAFFIC_SWITCH_FAILED",
                        f"The ingress serves version {_shown(served_version)}, not "
                        f"{expected_version!r}.", answer, data)
    if data["deployment_id_checked"] and served_deployment != expected_deployment_id:
        shown = _shown(served_deployment, quoted=False)
        return _failure("TRAFFIC_SWITCH_FAILED",
                        f"The ingress serves deployment {shown}, not {expected_deployment_id}.",
                        answer, data)
    return _success(f"The ingress serves version {_shown(served_version)}.", answer, data)


def _hostname(value):
    """The host of a hostname or URL (DigitalOcean gives live URLs with a scheme)."""
    value = (value or "").strip()
    if "://" in value:
        return (urlsplit(value).hostname or "").lower()
    return value.rstrip(".").lower()


def _is_ip(host):
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def check_dns(hostname, *, resolver=socket.getaddrinfo):
    """Step 6: the app's hostname resolves; ``resolver`` is called like getaddrinfo."""
    host = _hostname(hostname)
    data = {"hostname": host}
    if not host:
        return CheckResult(False, "DNS_PROPAGATION_DELAY", "No hostname was given to resolve.",
                           data=data)
    if host == "localhost" or _is_ip(host):
        return CheckResult(True, None, f"{host} needs no DNS lookup.",
                           data={**data, "addresses": [host]})
    try:
        infos = resolver(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        return CheckResult(False, "DNS_PROPAGATION_DELAY",
                           f"The hostname {host} does not resolve yet ({exc}).", data=data)
    addresses = sorted({info[4][0] for info in infos})
    if not addresses:
        return CheckResult(False, "DNS_PROPAGATION_DELAY",
                           f"The hostname {host} resolves to no address yet.", data=data)
    return CheckResult(True, None, f"{host} resolves to {', '.join(addresses)}.",
                       data={**data, "addresses": addresses})


def _name_of(cert, field):
    return dict(pair for rdn in cert.get(field, ()) for pair in rdn).get("commonName")


def check_tls(hostname, port=443, min_days=7, cafile=None, *, timeout_seconds=10.0):
    """Step 6: a real TLS handshake; chain, hostname and ``min_days`` of validity left.

    ``cafile`` replaces the system trust store (used for private CAs and tests).
    """
    host = _hostname(hostname)
    data = {"hostname": host, "port": port}
    if not host:
        return CheckResult(False, "SSL_CERTIFICATE_ERROR", "No hostname was given to check.",
                           data=data)
    context = ssl.create_default_context(cafile=cafile)
    start = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout_seconds) as raw, \
                context.wrap_socket(raw, server_hostname=host) as tls:
            cert = tls.getpeercert()
            data["tls_version"] = tls.version()
    except ssl.SSLCertVerificationError as exc:
        return CheckResult(False, "SSL_CERTIFICATE_ERROR",
                           f"The certificate of {host}:{port} is not valid: {exc.verify_message}.",
                           data=data)
    except ssl.SSLError as exc:
        return CheckResult(False, "SSL_CERTIFICATE_ERROR",
                           f"The TLS handshake with {host}:{port} failed: {exc.reason or exc}.",
                           data=data)
    except socket.gaierror:
        return CheckResult(False, "DNS_PROPAGATION_DELAY",
                           f"{host} does not resolve yet, so its certificate cannot be checked.",
                           data=data)
    except OSError as exc:
        return CheckResult(False, "LOAD_BALANCER_ERROR",
                           f"No TLS connection could be made to {host}:{port} "
                           f"({exc.strerror or exc}).", data=data)
    elapsed_ms = round((time.monotonic() - start) * 1000)
    expires = ssl.cert_time_to_seconds(cert["notAfter"])
    days_left = (expires - time.time()) / 86400
    data.update(
        not_after=datetime.datetime.fromtimestamp(expires, datetime.timezone.utc).isoformat(),
        days_left=round(days_left, 1), subject=_name_of(cert, "subject"),
        issuer=_name_of(cert, "issuer"),
    )
    if days_left < min_days:
        return CheckResult(False, "SSL_CERTIFICATE_ERROR",
                           f"The certificate of {host} expires in {days_left:.1f} days, within "
                           f"the {min_days}-day margin.", elapsed_ms=elapsed_ms, data=data)
    return CheckResult(True, None, f"The certificate of {host} is valid for {days_left:.0f} "
                       "more days.", elapsed_ms=elapsed_ms, data=data)
