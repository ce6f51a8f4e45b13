"""REST client for the DigitalOcean App Platform calls the deployment procedure needs.

Safety rules the Odoo layer relies on:

* Reads and calls whose effect does not change when repeated (GET, propose,
  rollback validation, cancel, rollback commit) are retried on 429, 5xx (not
  501), transport errors and replies that are not the expected JSON, with
  capped exponential backoff and full jitter.
* Calls that create a deployment (``create_app``, ``update_app`` - each PUT of a
  spec deploys, so it is treated like a POST - ``create_deployment``,
  ``create_rollback``, ``revert_rollback``) are repeated only when DigitalOcean
  provably did not process them: a 429, or a connection that was never
  established. After a 5xx, a read timeout, a dropped connection or a 200 whose
  body is unreadable they raise with ``details["maybe_created"] = True`` so
  the caller re-reads the app instead of creating a second deployment.
* The token lives in the session's auth object only; it is never put in a log
  line, an exception text or a repr, and exceptions from ``requests`` are
  replaced (not chained) by redacted :class:`DeployError`.
"""

import json
import logging
import random
import time
from urllib.parse import quote, urlsplit

import requests
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError

from .api_errors import failure_code, status_error
from .do_api import DEFAULT_API_URL, check_token, log_operation, log_type_of
from .errors import DeployError, redact
from .rest import USER_AGENT, BearerAuth, error_reply

_logger = logging.getLogger(__name__)

# The burst limit is per minute: a longer wait blocks a worker for nothing,
# the caller is better off rescheduling with the reset time it is given.
MAX_RATE_LIMIT_WAIT = 60.0
# A log server that trickles bytes never trips the read timeout; this does.
LOG_DOWNLOAD_DEADLINE = 60.0
MAX_PAGES = 500


class _Tail:
    """The last ``size`` bytes of a stream, without holding the whole stream."""

    def __init__(self, size):
        self.size = size
        self.data = bytearray()
        self.cut = False

    def add(self, chunk):
        self.data += chunk
        if len(self.data) > 2 * self.size:
            del self.data[:-self.size]
            self.cut = True

    def text(self):
        data = bytes(self.data)
        if len(data) > self.size:
            data = data[-self.size:]
            self.cut = True
        if self.cut:
            # Drop the partial first line the cut left behind.
            newline = data.find(b"\n")
            if 0 <= newline < len(data) - 1:
                data = data[newline + 1:]
        return data.decode("utf-8", errors="replace")


def _int_header(headers, name):
    value = headers.get(name)
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


def _never_sent(exc):
    """True when the request provably never reached the server.

    ``requests.ConnectionError`` also covers a connection reset after the body
    was sent; only a failure to open the connection (urllib3's
    ConnectTimeoutError, of which NewConnectionError is a subclass) proves it.
    """
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    return isinstance(reason, MaxRetryError) and isinstance(reason.reason, ConnectTimeoutError)


class AppPlatformClient:
    """DigitalOcean App Platform REST API v2, as used by the deployment procedure."""

    def __init__(self, token, base_url=DEFAULT_API_URL, *, connect_timeout=5.0,
                 read_timeout=30.0, max_retries=5, backoff_base=1.0, backoff_cap=30.0,
                 sleep=time.sleep, session=None, log_tail_bytes=65536,
                 log_read_timeout=10.0, clock=time.time, log_session=None,
                 before_request=None):
        """Beyond the obvious: ``sleep`` and ``clock`` (epoch seconds, compared with
        ``ratelimit-reset``) are injectable for tests; ``session``, if given, gets
        the token as its auth; ``log_read_timeout`` bounds each read of a log
        archive, which is downloaded without the token, through ``log_session``
        if given (e.g. :func:`engine.urls.guarded_session`: log URLs come from
        the API's answer); ``before_request(operation)``, if given, runs before every
        API request, retries included, and may refuse it by raising a DeployError
        (e.g. a token-wide call budget that is spent).
        """
        check_token(token)
        if log_session is not None and log_session is session:
            raise ValueError("log archives must not get the token: give them their own session")
        parts = urlsplit(base_url or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise DeployError("SERVICE_UNAVAILABLE",
                              f"The DigitalOcean API URL {base_url!r} is not an http(s) URL.")
        self._token = token
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.log_timeout = (connect_timeout, min(read_timeout, log_read_timeout))
        self.max_retries = max_retries
        self._before_request = before_request
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.log_tail_bytes = log_tail_bytes
        self._sleep = sleep
        self._clock = clock
        self.session = session or requests.Session()
        # An auth object (not a default header) also keeps requests from
        # consulting ~/.netrc on every call, which could replace the token.
        self.session.auth = BearerAuth(token)
        self.session.headers.update({
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        })
        # Log archives live on other hosts (pre-signed URLs): never send them the token.
        self._log_session = log_session or requests.Session()
        self.rate_limit = {"limit": None, "remaining": None, "reset": None}
        self.request_count = 0
        self._registry_name = None

    def __repr__(self):
        return f"<AppPlatformClient {self.base_url}>"

    # ------------------------------------------------------------------ apps

    def list_apps(self):
        return list(self._paged("apps_list", "/v2/apps", "apps"))

    def get_app(self, app_id):
        body = self._call("GET", "apps_get", self._path("/v2/apps", app_id))
        return self._member(body, "app", "apps_get")

    def create_app(self, spec, project_id=None):
        payload = {"spec": self._checked_spec(spec)}
        if project_id:
            payload["project_id"] = project_id
        body = self._call("POST", "apps_create", "/v2/apps", payload, repeatable=False)
        return self._member(body, "app", "apps_create", maybe_created=True)

    def update_app(self, app_id, spec, update_all_source_versions=False):
        """Replace the app's spec; DigitalOcean deploys it by itself.

        The returned app's ``pending_deployment`` is the deployment this call
        created: do not call :meth:`create_deployment` after it.
        """
        payload = {
            "spec": self._checked_spec(spec),
            "update_all_source_versions": bool(update_all_source_versions),
        }
        body = self._call("PUT", "apps_update", self._path("/v2/apps", app_id), payload,
                          repeatable=False)
        return self._member(body, "app", "apps_update", maybe_created=True)

    def propose(self, spec, app_id=None):
        """Validate ``spec`` (as an update of ``app_id`` if given) and price it."""
        payload = {"spec": self._checked_spec(spec)}
        if app_id:
            payload["app_id"] = app_id
        return self._call("POST", "apps_validate_appSpec", "/v2/apps/propose", payload)

    def get_app_health(self, app_id):
        """Return the ``app_health`` object (components with state and replicas)."""
        body = self._call("GET", "apps_get_health", self._path("/v2/apps", app_id, "health"))
        return self._member(body, "app_health", "apps_get_health")

    # ----------------------------------------------------------- deployments

    def create_deployment(self, app_id, force_build=False):
        """Redeploy the app's current spec. Never repeated blindly (see module doc)."""
        body = self._call(
            "POST", "apps_create_deployment", self._path("/v2/apps", app_id, "deployments"),
            {"force_build": bool(force_build)}, repeatable=False,
        )
        return self._member(body, "deployment", "apps_create_deployment", maybe_created=True)

    def get_deployment(self, app_id, deployment_id):
        path = self._path("/v2/apps", app_id, "deployments", deployment_id)
        return self._member(self._call("GET", "apps_get_deployment", path),
                            "deployment", "apps_get_deployment")

    def list_deployments(self, app_id, page=1, per_page=20):
        path = self._path("/v2/apps", app_id, "deployments")
        body = self._call("GET", "apps_list_deployments", path,
                          params={"page": int(page), "per_page": int(per_page)})
        return body.get("deployments") or []

    def cancel_deployment(self, app_id, deployment_id):
        path = self._path("/v2/apps", app_id, "deployments", deployment_id, "cancel")
        return self._member(self._call("POST", "apps_cancel_deployment", path),
                            "deployment", "apps_cancel_deployment")

    # ------------------------------------------------------------------ logs

    def get_logs(self, app_id, deployment_id=None, component=None, log_type="BUILD"):
        """Return the tail (``log_tail_bytes``) of a deployment's archived logs.

        Without ``deployment_id`` the active deployment's logs are read; without
        ``component`` the aggregate of all components. A component log is its
        first archive, the aggregate all archives in order. An empty string means
        there is no log (DigitalOcean answers 400 when a phase was never reached).
        """
        log_type = log_type_of(log_type)
        segments = ["deployments", deployment_id] if deployment_id else []
        if component:
            segments += ["components", component]
        operation = log_operation(deployment_id, component)
        path = self._path("/v2/apps", app_id, *segments, "logs")
        body = self._call("GET", operation, path,
                          params={"type": log_type, "follow": "false"}, empty_on_400=True)
        urls = body.get("historic_urls") or []
        if component:
            urls = urls[:1]
        tail = _Tail(self.log_tail_bytes)
        for url in urls:
            self._download_tail(url, tail)
        return tail.text()

    def _download_tail(self, url, tail):
        if urlsplit(url).scheme not in ("http", "https"):
            raise DeployError("SERVICE_UNAVAILABLE",
                              "DigitalOcean gave a log URL that is not http(s).",
                              details={"url": redact(url, [self._token])})
        details = {"url": redact(urlsplit(url)._replace(query="").geturl(), [self._token])}
        deadline = time.monotonic() + LOG_DOWNLOAD_DEADLINE
        try:
            with self._log_session.get(url, stream=True, timeout=self.log_timeout) as response:
                if response.status_code != 200:
                    raise DeployError(
                        "SERVICE_UNAVAILABLE",
                        f"The log archive answered HTTP {response.status_code}.",
                        details=dict(details, http_status=response.status_code), retryable=True,
                    )
                for chunk in response.iter_content(chunk_size=65536):
                    tail.add(chunk)
                    if time.monotonic() > deadline:
                        raise DeployError("SERVICE_UNAVAILABLE",
                                          "The log archive did not finish downloading in time.",
                                          details=details, retryable=True)
        except requests.RequestException as exc:
            raise DeployError(
                "SERVICE_UNAVAILABLE", "The log archive did not answer.",
                details=dict(details, reason=redact(exc, [self._token])), retryable=True,
            ) from None

    # -------------------------------------------------------------- rollback

    def validate_rollback(self, app_id, deployment_id, skip_pin=False):
        path = self._path("/v2/apps", app_id, "rollback", "validate")
        body = self._call("POST", "apps_validate_rollback", path,
                          self._rollback_payload(deployment_id, skip_pin))
        return {"valid": bool(body.get("valid")), "error": body.get("error"),
                "warnings": body.get("warnings") or []}

    def create_rollback(self, app_id, deployment_id, skip_pin=False):
        """Start a rollback to ``deployment_id``; unless ``skip_pin`` the app stays
        pinned (no other deployment possible) until commit or revert."""
        path = self._path("/v2/apps", app_id, "rollback")
        body = self._call("POST", "apps_create_rollback", path,
                          self._rollback_payload(deployment_id, skip_pin), repeatable=False)
        return self._member(body, "deployment", "apps_create_rollback", maybe_created=True)

    def commit_rollback(self, app_id):
        path = self._path("/v2/apps", app_id, "rollback", "commit")
        self._call("POST", "apps_commit_rollback", path, empty_ok=True)

    def revert_rollback(self, app_id):
        path = self._path("/v2/apps", app_id, "rollback", "revert")
        body = self._call("POST", "apps_revert_rollback", path, repeatable=False)
        return self._member(body, "deployment", "apps_revert_rollback", maybe_created=True)

    def _rollback_payload(self, deployment_id, skip_pin):
        if not deployment_id or not isinstance(deployment_id, str):
            raise DeployError("APP_NOT_FOUND", "No deployment to roll back to was given.")
        return {"deployment_id": deployment_id, "skip_pin": bool(skip_pin)}

    # -------------------------------------------------------------- registry

    def tag_exists(self, repository, tag, registry=None):
        """Tell whether ``repository:tag`` is in the registry.

        An unknown tag is ``False``; an unknown repository or registry raises
        IMAGE_PULL_FAILURE, because no tag of it can ever be deployed.
        """
        if not repository or not isinstance(repository, str):
            raise DeployError("IMAGE_PULL_FAILURE", "No image repository was given.")
        if not tag or not isinstance(tag, str):
            raise DeployError("IMAGE_TAG_MISSING", "No image tag was given.")
        registry = registry or self.registry_name()
        path = self._path("/v2/registry", registry, "repositories", repository, "tags")
        for item in self._paged("registry_list_repositoryTags", path, "tags", per_page=200):
            if item.get("tag") == tag:
                return True
        return False

    def registry_name(self):
        """The account's registry name (cached: it cannot change under a token)."""
        if self._registry_name is None:
            body = self._call("GET", "registry_get", "/v2/registry")
            name = self._member(body, "registry", "registry_get").get("name")
            if not name:
                raise self._unreadable_error("registry_get", "has no registry name", False)
            self._registry_name = name
        return self._registry_name

    # ------------------------------------------------------------- plumbing

    def _path(self, prefix, *segments):
        for segment in segments:
            if not segment or not isinstance(segment, str):
                raise DeployError("APP_NOT_FOUND", "An app, deployment or component id is empty.")
        return "/".join([prefix, *(quote(segment, safe="") for segment in segments)])

    @staticmethod
    def _checked_spec(spec):
        if not isinstance(spec, dict) or not spec:
            raise DeployError("APP_SPEC_SYNTAX_ERROR", "The app spec must be a non-empty mapping.")
        return spec

    def _paged(self, operation, path, key, per_page=200):
        seen = 0
        for page in range(1, MAX_PAGES + 1):
            body = self._call("GET", operation, path, params={"page": page, "per_page": per_page})
            items = body.get(key) or []
            yield from items
            seen += len(items)
            total = (body.get("meta") or {}).get("total")
            next_link = ((body.get("links") or {}).get("pages") or {}).get("next")
            if not items or not next_link or (isinstance(total, int) and seen >= total):
                return

    def _member(self, body, key, operation, maybe_created=False):
        value = body.get(key)
        if not isinstance(value, dict):
            raise self._unreadable_error(operation, f"has no {key!r} object", maybe_created)
        return value

    def _call(self, method, operation, path, payload=None, *, params=None, repeatable=True,
              empty_ok=False, empty_on_400=False):
        """Send one API request with the retry policy; return its JSON object."""
        data = None
        if payload is not None:
            try:
                data = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
            except (TypeError, ValueError) as exc:
                raise DeployError("APP_SPEC_SYNTAX_ERROR",
                                  f"The request cannot be sent as JSON: {exc}.") from None
        headers = {"Content-Type": "application/json"} if data is not None else None
        url = self.base_url + path
        attempt = 0
        while True:
            wait = None
            if self._before_request is not None:
                self._before_request(operation)
            try:
                self.request_count += 1
                response = self.session.request(method, url, params=params, data=data,
                                                headers=headers, timeout=self.timeout)
            except requests.RequestException as exc:
                never_sent = _never_sent(exc)
                permanent = isinstance(exc, requests.exceptions.SSLError)
                if permanent or not (repeatable or never_sent) or attempt >= self.max_retries:
                    raise self._transport_error(
                        operation, exc, attempt, repeatable, never_sent) from None
                reason = type(exc).__name__
            else:
                self._track_rate_limit(response.headers)
                status = response.status_code
                if status < 300:
                    body = self._json_object(response, empty_ok)
                    if body is not None:
                        return body
                    if not repeatable or attempt >= self.max_retries:
                        raise self._unreadable_error(operation, "is not a JSON object",
                                                     not repeatable, status)
                    reason = "unreadable body"
                elif status == 400 and empty_on_400:
                    return {}
                elif status == 429:
                    wait = self._rate_limit_wait(response, attempt)
                    if wait is None or attempt >= self.max_retries:
                        raise self._status_error(operation, response, attempt)
                    reason = "HTTP 429"
                elif status >= 500 and status != 501 and repeatable and attempt < self.max_retries:
                    reason = f"HTTP {status}"
                else:
                    raise self._status_error(operation, response, attempt)
            if wait is None:
                wait = self._backoff(attempt)
            attempt += 1
            _logger.info("DigitalOcean %s %s: %s, retry %d/%d in %.1f s", method, path, reason,
                         attempt, self.max_retries, wait)
            self._sleep(wait)

    def _backoff(self, attempt):
        """Capped exponential backoff with full jitter (spreads retrying workers)."""
        return random.uniform(0, min(self.backoff_cap, self.backoff_base * 2 ** attempt))

    @staticmethod
    def _json_object(response, empty_ok):
        content = response.content
        if empty_ok and not content.strip():
            return {}
        try:
            body = json.loads(content)
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def _track_rate_limit(self, headers):
        if "ratelimit-remaining" in headers:
            self.rate_limit = {
                "limit": _int_header(headers, "ratelimit-limit"),
                "remaining": _int_header(headers, "ratelimit-remaining"),
                "reset": _int_header(headers, "ratelimit-reset"),
            }

    def _rate_limit_wait(self, response, attempt):
        """Seconds to wait after a 429, or None when waiting is not worth it."""
        retry_after = response.headers.get("retry-after")
        if retry_after is not None:
            try:
                seconds = max(float(retry_after), 0.0)
            except ValueError:
                seconds = None
            if seconds is not None:
                return seconds if seconds <= MAX_RATE_LIMIT_WAIT else None
        reset = self.rate_limit["reset"]
        until_reset = reset - self._clock() if reset is not None else None
        if until_reset is not None and until_reset <= MAX_RATE_LIMIT_WAIT:
            return max(until_reset, 0.0)
        return self._backoff(attempt)

    def _transport_error(self, operation, exc, attempt, repeatable, never_sent):
        details = {"operation": operation, "attempts": attempt + 1,
                   "reason": redact(exc, [self._token])}
        maybe_created = not repeatable and not never_sent
        if not repeatable:
            details["maybe_created"] = maybe_created
        what = "could not be reached" if never_sent else "did not answer"
        return DeployError(failure_code(operation),
                           f"DigitalOcean's API {what} ({type(exc).__name__}).",
                           details=details, retryable=not maybe_created)

    def _unreadable_error(self, operation, problem, maybe_created, status=200):
        details = {"operation": operation, "http_status": status}
        if maybe_created:
            details["maybe_created"] = True
        return DeployError(failure_code(operation),
                           f"DigitalOcean's answer to {operation} {problem}.",
                           details=details, retryable=not maybe_created)

    def _status_error(self, operation, response, attempt):
        """Map an error reply to its SOP code; DigitalOcean's own message ends the sentence."""
        status = response.status_code
        body, do_message = error_reply(response, self._token)
        details = {
            "operation": operation,
            "error_id": body.get("id"),
            "request_id": body.get("request_id") or response.headers.get("x-request-id"),
            "attempts": attempt + 1,
        }
        if status == 429:
            details.update(self.rate_limit,
                           retry_after=_int_header(response.headers, "retry-after"))
        return status_error(operation, status, do_message, details)
