"""Plumbing shared by the JSON API routes: error bodies, body limits, credentials, rate limits.

The routes are ``type='http'`` with ``auth='none'`` so that this module, not
Odoo's generic handlers, decides every status code and every error body:

    {"error": {"code": "UNAUTHORIZED_API", "message": "One plain sentence."}}

``code`` is an SOP-DEPLOY-001 code where one applies (``UNAUTHORIZED_API``,
``TASK_NOT_FOUND``, ``APP_NOT_FOUND``, ``IMAGE_TAG_MISSING``, ...) and a
lower-case HTTP-level code otherwise (``bad_request``, ``forbidden``, ...).
No error body carries a stack trace, a key, a secret or a signature.
"""

import functools
import hashlib
import hmac
import json
import logging
import threading
import time

import psycopg2

from odoo import http
from odoo.exceptions import AccessError, ConcurrencyError, MissingError, UserError
from odoo.http import request

_logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
RATE_LIMIT_PARAM = "do_deploy.api_rate_limit"
DEFAULT_RATE_LIMIT = 120  # requests per minute per client address, per Odoo worker
SIGNATURE_HEADER = "X-Hub-Signature-256"
USER_GROUP = "do_deploy.group_do_deploy_user"
MANAGER_GROUP = "do_deploy.group_do_deploy_manager"
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

# Generic codes for HTTP-level problems that no SOP code describes.
BAD_REQUEST = "bad_request"
FORBIDDEN = "forbidden"
NOT_FOUND = "not_found"
METHOD_NOT_ALLOWED = "method_not_allowed"
CONFLICT = "conflict"
LENGTH_REQUIRED = "length_required"
PAYLOAD_TOO_LARGE = "payload_too_large"
VALIDATION_ERROR = "validation_error"
RATE_LIMITED = "rate_limited"
INTERNAL_ERROR = "internal_error"


class ApiError(Exception):
    """A refusal with its HTTP status, error code and one plain sentence for the caller."""

    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def json_response(data, status=200, headers=None):
    headers = {"Cache-Control": "no-store", **(headers or {})}
    return request.make_json_response(data, headers=list(headers.items()), status=status)


def error_response(status, code, message, headers=None):
    return json_response({"error": {"code": code, "message": message}}, status, headers)


class RateLimiter:
    """Token buckets per client address, in the memory of one Odoo worker.

    A bucket holds ``limit`` tokens and refills at ``limit`` per minute. The
    limit is part of the key, so changing the system parameter starts fresh
    buckets instead of inheriting the emptied ones.
    """

    MAX_BUCKETS = 10000

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._buckets = {}
        self._lock = threading.Lock()

    def consume(self, client, limit):
        """Take one token; return 0 when allowed, else the seconds until one is free."""
        now = self._clock()
        rate = limit / 60.0
        key = (client, limit)
        with self._lock:
            tokens, last = self._buckets.get(key, (float(limit), now))
            tokens = min(float(limit), tokens + (now - last) * rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return (1.0 - tokens) / rate
            if len(self._buckets) >= self.MAX_BUCKETS and key not in self._buckets:
                self._buckets.clear()  # bounded memory; worst case, clients get a fresh bucket
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0

    def reset(self):
        with self._lock:
            self._buckets.clear()


rate_limiter = RateLimiter()


def check_rate_limit():
    """Refuse with 429 when this client address has used up its bucket."""
    value = request.env["ir.config_parameter"].sudo().get_param(RATE_LIMIT_PARAM)
    try:
        limit = DEFAULT_RATE_LIMIT if value is None else int(value)
    except ValueError:
        limit = DEFAULT_RATE_LIMIT
    if limit <= 0:
        return
    wait = rate_limiter.consume(request.httprequest.remote_addr, limit)
    if wait:
        retry_after = str(max(1, int(wait + 0.999)))
        raise ApiError(429, RATE_LIMITED,
                       f"Too many requests from this address; retry in {retry_after} seconds.",
                       headers={"Retry-After": retry_after})


def _rollback():
    """Undo what the request wrote: Odoo commits after a route returns, even a 4xx."""
    if request.env is not None:
        request.env.cr.rollback()


def json_api(*methods):
    """Decorate a route so that every outcome, error or not, is a JSON answer.

    The route is declared with ``methods=ALL_METHODS`` and checked here, so a
    wrong method gets a JSON 405 (with ``Allow``) rather than Odoo's HTML page.
    Every call counts against the client's rate limit, before authentication,
    so guessing keys is limited too. Concurrency errors are re-raised for
    Odoo's retry loop.
    """

    def decorator(func):
        @functools.wraps(func)
        def wrapper(self, *args, **kwargs):
            try:
                if request.httprequest.method not in methods:
                    raise ApiError(405, METHOD_NOT_ALLOWED,
                                   f"Use {' or '.join(methods)} on this URL.",
                                   headers={"Allow": ", ".join(methods)})
                if not request.db:
                    raise ApiError(503, "SERVICE_UNAVAILABLE",
                                   "No database is available on this server.")
                check_rate_limit()
                return func(self, *args, **kwargs)
            except (ConcurrencyError, psycopg2.OperationalError):
                raise
            except ApiError as error:
                _rollback()
                return error_response(error.status, error.code, error.message, error.headers)
            except MissingError:
                _rollback()
                return error_response(404, NOT_FOUND, "The record does not exist any more.")
            except AccessError:
                _rollback()
                return error_response(403, FORBIDDEN,
                                      "Your access rights do not allow this operation.")
            except UserError as error:
                _rollback()
                return error_response(422, VALIDATION_ERROR, str(error.args[0]))
            except psycopg2.IntegrityError:
                _rollback()
                return error_response(
                    409, CONFLICT, "The request conflicts with the current data; reload and retry.")
            except Exception:
                _logger.exception("do_deploy API: unexpected error on %s %s",
                                  request.httprequest.method, request.httprequest.path)
                _rollback()
                return error_response(500, INTERNAL_ERROR,
                                      "The server could not process the request; see its log.")

        return wrapper

    return decorator


def api_route(route, **kwargs):
    """``http.route`` with the options every API route shares."""
    return http.route(route, type="http", auth="none", methods=ALL_METHODS, csrf=False,
                      save_session=False, **kwargs)


def read_body():
    """Return the raw body, refusing with 413 anything over :data:`MAX_BODY_BYTES`.

    The declared length is checked before a byte is read or parsed. A body
    without a Content-Length (chunked) is refused with 411, since its size is
    only known once it has been read.
    """
    httprequest = request.httprequest
    length = httprequest.content_length
    if length is None:
        if "chunked" in httprequest.headers.get("Transfer-Encoding", "").lower():
            raise ApiError(411, LENGTH_REQUIRED, "Send the body with a Content-Length header.")
        return b""
    if length > MAX_BODY_BYTES:
        raise ApiError(413, PAYLOAD_TOO_LARGE,
                       f"The request body is larger than {MAX_BODY_BYTES // 1024} KB.")
    return httprequest.get_data()


def parse_json_object(raw):
    """The body as a JSON object; 400 for anything else."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError(400, BAD_REQUEST, "The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ApiError(400, BAD_REQUEST, "The request body must be a JSON object.")
    return data


def authenticate_bearer():
    """Act as the owner of the ``Authorization: Bearer <Odoo API key>``; 401 without one.

    The key is checked the way Odoo's own ``auth='bearer'`` does (keys made in
    the UI, scope empty or 'rpc'), then the request runs as that user, so the
    user's groups and record rules apply exactly as in the web client.
    """
    key = bearer_key()
    if not key:
        raise unauthorized("Send an Odoo API key as 'Authorization: Bearer <key>'.")
    uid = request.env["res.users.apikeys"]._check_credentials(scope="rpc", key=key)
    if not uid:
        raise unauthorized("The API key is invalid, expired or revoked.")
    act_as(uid)
    return request.env.user


def bearer_key():
    scheme, _, key = request.httprequest.headers.get("Authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


def act_as(uid, company_ids=None):
    """Run the rest of the request as ``uid``, in ``company_ids`` (by default all of
    that user's companies)."""
    if company_ids is None:
        # _get_company_ids() is the ORM's cached list of the user's active companies
        # (the one it checks allowed_company_ids against): no query once warm.
        company_ids = list(request.env["res.users"].sudo().browse(uid)._get_company_ids())
    request.update_env(user=uid, context=dict(request.env.context,
                                              allowed_company_ids=list(company_ids)))


def unauthorized(message):
    return ApiError(401, "UNAUTHORIZED_API", message,
                    headers={"WWW-Authenticate": 'Bearer realm="do_deploy"'})


def require_group(xmlid, message):
    if not request.env.user.has_group(xmlid):
        raise ApiError(403, FORBIDDEN, message)


def signature_of(secret, message):
    """GitHub's webhook signature: ``sha256=`` and the hex HMAC-SHA256 of ``message``."""
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_matches(secret, message):
    """Whether the request's signature header signs ``message`` under ``secret``."""
    given = request.httprequest.headers.get(SIGNATURE_HEADER, "")
    expected = signature_of(secret, message) if secret else ""
    return bool(secret) and hmac.compare_digest(given.encode(), expected.encode())


def record_id(value, field):
    """A positive integer id from JSON (int, or digits in a string); 422 otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ApiError(422, VALIDATION_ERROR, f"'{field}' must be a record id.")
    if isinstance(value, str):
        if not value.isdigit():
            raise ApiError(422, VALIDATION_ERROR, f"'{field}' must be a record id.")
        value = int(value)
    if value <= 0 or value > 2**31 - 1:
        raise ApiError(422, VALIDATION_ERROR, f"'{field}' must be a record id.")
    return value


def base_url():
    return request.httprequest.host_url.rstrip("/")


def datetime_json(value):
    """Odoo datetimes are naive UTC: give them an explicit zone in the API."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None
