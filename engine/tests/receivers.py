"""Local stand-ins for Slack's incoming webhooks and PagerDuty's Events API v2, on loopback.

Each receiver checks what it is sent against the documented format (JSON Schema,
below) and answers as the real service does:

* Slack (``POST /services/T.../B.../<token>``): 200 ``ok``; 400 ``invalid_payload``;
  403 ``invalid_token`` for a token it does not know; 404 ``no_service`` for a path
  that is no webhook; 429 ``rate_limited`` with Retry-After when throttling.
* PagerDuty (``POST /v2/enqueue``): 202 ``{"status": "success", "message": "Event
  processed", "dedup_key": ...}``; 400 ``{"status": "invalid event", ...}``; 429
  when throttling.

``fail_next(status, body, headers)`` makes the next answers fail as given;
``received`` lists every request (path, headers, JSON body). :class:`HangingReceiver`
accepts and answers nothing for 30 s; :class:`TricklingReceiver` sends its answer a
byte at a time.
"""

import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler

import jsonschema

from .loopback import LoopbackServer

# --- Slack Block Kit, the subset a webhook message of ours may use --------------------

SLACK_TOKEN_RE = re.compile(r"^/services/(T[A-Z0-9]+)/(B[A-Z0-9]+)/([A-Za-z0-9]+)$")


def _text_object(max_length, types=("mrkdwn", "plain_text")):
    return {
        "type": "object", "required": ["type", "text"], "additionalProperties": False,
        "properties": {
            "type": {"enum": list(types)},
            "text": {"type": "string", "minLength": 1, "maxLength": max_length},
            "emoji": {"type": "boolean"}, "verbatim": {"type": "boolean"},
        },
    }


_BLOCK_ID = {"type": "string", "maxLength": 255}
SLACK_BLOCKS = {
    "section": {
        "type": "object", "required": ["type"], "additionalProperties": False,
        "anyOf": [{"required": ["text"]}, {"required": ["fields"]}],
        "properties": {
            "type": {"const": "section"}, "block_id": _BLOCK_ID,
            "text": _text_object(3000),
            "fields": {"type": "array", "minItems": 1, "maxItems": 10,
                       "items": _text_object(2000)},
            "accessory": {"type": "object"},
        },
    },
    "context": {
        "type": "object", "required": ["type", "elements"], "additionalProperties": False,
        "properties": {
            "type": {"const": "context"}, "block_id": _BLOCK_ID,
            "elements": {"type": "array", "minItems": 1, "maxItems": 10,
                         "items": _text_object(3000)},
        },
    },
    "actions": {
        "type": "object", "required": ["type", "elements"], "additionalProperties": False,
        "properties": {
            "type": {"const": "actions"}, "block_id": _BLOCK_ID,
            "elements": {"type": "array", "minItems": 1, "maxItems": 25, "items": {
                "type": "object", "required": ["type", "text"], "additionalProperties": False,
                "properties": {
                    "type": {"const": "button"},
                    "text": _text_object(75, types=("plain_text",)),
                    "action_id": {"type": "string", "maxLength": 255},
                    "url": {"type": "string", "maxLength": 3000, "pattern": "^https?://"},
                    "value": {"type": "string", "maxLength": 2000},
                    "style": {"enum": ["primary", "danger"]},
                },
            }},
        },
    },
    "divider": {
        "type": "object", "required": ["type"], "additionalProperties": False,
        "properties": {"type": {"const": "divider"}, "block_id": _BLOCK_ID},
    },
}
SLACK_MESSAGE = {
    "type": "object", "required": ["text", "blocks"], "additionalProperties": False,
    "properties": {
        "text": {"type": "string", "minLength": 1, "maxLength": 40000},
        "blocks": {"type": "array", "minItems": 1, "maxItems": 50, "items": {
            "type": "object", "required": ["type"],
            "properties": {"type": {"enum": list(SLACK_BLOCKS)}},
            "allOf": [{"if": {"properties": {"type": {"const": kind}}}, "then": schema}
                      for kind, schema in SLACK_BLOCKS.items()],
        }},
    },
}

# --- PagerDuty Events API v2 ----------------------------------------------------------

_ISO_8601 = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$"
PAGERDUTY_EVENT = {
    "type": "object", "required": ["routing_key", "event_action"],
    "additionalProperties": False,
    "properties": {
        "routing_key": {"type": "string", "minLength": 32, "maxLength": 32},
        "event_action": {"enum": ["trigger", "acknowledge", "resolve"]},
        "dedup_key": {"type": "string", "minLength": 1, "maxLength": 255},
        "client": {"type": "string"},
        "client_url": {"type": "string", "pattern": "^https?://"},
        "payload": {
            "type": "object", "required": ["summary", "source", "severity"],
            "additionalProperties": False,
            "properties": {
                "summary": {"type": "string", "minLength": 1, "maxLength": 1024},
                "source": {"type": "string", "minLength": 1},
                "severity": {"enum": ["critical", "error", "warning", "info"]},
                "timestamp": {"type": "string", "pattern": _ISO_8601},
                "component": {"type": "string"},
                "group": {"type": "string"},
                "class": {"type": "string"},
                "custom_details": {"type": "object"},
            },
        },
        "links": {"type": "array", "items": {
            "type": "object", "required": ["href"], "additionalProperties": False,
            "properties": {"href": {"type": "string", "pattern": "^https?://"},
                           "text": {"type": "string"}}}},
        "images": {"type": "array", "items": {
            "type": "object", "required": ["src"], "additionalProperties": False,
            "properties": {"src": {"type": "string", "pattern": "^https://"},
                           "href": {"type": "string"}, "alt": {"type": "string"}}}},
    },
    "allOf": [
        {"if": {"properties": {"event_action": {"const": "trigger"}}},
         "then": {"required": ["payload"]}},
        {"if": {"properties": {"event_action": {"enum": ["acknowledge", "resolve"]}}},
         "then": {"required": ["dedup_key"]}},
    ],
}


def schema_errors(schema, document):
    """Every violation of ``schema`` by ``document``, as readable lines (empty: valid)."""
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
            for error in validator.iter_errors(document)]


class Receiver(LoopbackServer):
    """A loopback HTTP server in a thread; subclasses answer in ``answer``."""

    def __init__(self):
        self.received = []
        self._failures = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):
                """Quiet: the tests read ``received`` instead."""

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                receiver.handle(self, self.rfile.read(length))

        super().__init__(Handler)

    def fail_next(self, status, body="", headers=None, times=1):
        """Answer the next ``times`` requests with ``status`` and ``body`` instead."""
        with self._lock:
            self._failures += [(status, body, headers or {})] * times

    def handle(self, handler, raw):
        try:
            document = json.loads(raw)
        except ValueError:
            document = None
        with self._lock:
            self.received.append({"path": handler.path, "headers": dict(handler.headers),
                                  "json": document, "raw": raw})
            failure = self._failures.pop(0) if self._failures else None
        status, body, headers = failure or self.answer(handler.path, document)
        self.reply(handler, status, body, headers)

    @staticmethod
    def reply(handler, status, body, headers):
        data = body if isinstance(body, bytes) else (
            json.dumps(body) if isinstance(body, dict) else body).encode()
        handler.send_response(status)
        is_json = isinstance(body, dict)
        handler.send_header("Content-Type",
                            "application/json" if is_json else "text/plain; charset=utf-8")
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def answer(self, path, document):
        raise NotImplementedError


class SlackReceiver(Receiver):
    """Slack's incoming webhooks: known ``tokens`` are webhooks, checked payloads."""

    def __init__(self, token="aBcDeFgHiJkLmNoPqRsTuVwX"):
        super().__init__()
        self.token = token
        self.errors = []

    def webhook_url(self, token=None):
        return f"{self.url}/services/T0123ABCD/B0456EFGH/{token or self.token}"

    def answer(self, path, document):
        match = SLACK_TOKEN_RE.match(path)
        if not match:
            return 404, "no_service", {}
        if match.group(3) != self.token:
            return 403, "invalid_token", {}
        errors = ["not JSON"] if document is None else schema_errors(SLACK_MESSAGE, document)
        if errors:
            self.errors.append(errors)
            return 400, "invalid_payload", {}
        return 200, "ok", {}

    def throttle_next(self, retry_after=30):
        self.fail_next(429, "rate_limited", {"Retry-After": str(retry_after)})


class PagerDutyReceiver(Receiver):
    """PagerDuty's Events API v2 at /v2/enqueue, checking each event."""

    def __init__(self):
        super().__init__()
        self.errors = []

    @property
    def enqueue_url(self):
        return f"{self.url}/v2/enqueue"

    def answer(self, path, document):
        if path != "/v2/enqueue":
            return 404, {"status": "Not found"}, {}
        errors = (["not JSON"] if document is None
                  else schema_errors(PAGERDUTY_EVENT, document))
        if errors:
            self.errors.append(errors)
            return 400, {"status": "invalid event", "message": "Event object is invalid",
                         "errors": errors}, {}
        key = document.get("dedup_key") or uuid.uuid4().hex
        return 202, {"status": "success", "message": "Event processed", "dedup_key": key}, {}

    def throttle_next(self):
        self.fail_next(429, {"status": "throttle event", "message": "Requests for this "
                             "service are arriving too quickly. Please retry later."})


class HangingReceiver(Receiver):
    """Accepts, reads the request, then answers nothing for ``hang_seconds``."""

    def __init__(self, hang_seconds=30.0):
        super().__init__()
        self.hang_seconds = hang_seconds
        self.released = threading.Event()

    def answer(self, path, document):
        self.released.wait(self.hang_seconds)
        return 200, "ok", {}

    def stop(self):
        self.released.set()
        super().stop()


class TricklingReceiver(Receiver):
    """Answers 200 with a status line and headers sent one byte every ``interval``."""

    def __init__(self, interval=0.2):
        super().__init__()
        self.interval = interval
        self.released = threading.Event()

    def handle(self, handler, raw):
        self.received.append({"path": handler.path, "raw": raw})
        for byte in b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok":
            if self.released.wait(self.interval):
                return
            try:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
            except OSError:
                return

    def answer(self, path, document):
        raise AssertionError("the trickling receiver writes its answer itself")

    def stop(self):
        self.released.set()
        super().stop()


def wait_until(predicate, timeout=5.0):
    """Poll ``predicate`` until true (for a server thread to record what it got)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)
