"""What the DigitalOcean and GitHub REST clients do alike with a token and an error reply.

Defined once so that both keep their token out of reprs and ``~/.netrc``, and
both read an error reply's message the same way, with the token masked.
"""

import json

import requests

from .errors import redact

USER_AGENT = "do_deploy (Odoo) python-requests"


class BearerAuth(requests.auth.AuthBase):
    """Adds the bearer token; as an auth object it also keeps ~/.netrc out. Its repr hides it."""

    def __init__(self, token):
        self._header = f"Bearer {token}"

    def __call__(self, request):
        request.headers["Authorization"] = self._header
        return request

    def __repr__(self):
        return "<BearerAuth ***>"


def error_reply(response, token):
    """An error reply as ``(body, message)``: its JSON object (``{}`` when it is none) and
    its message (else the HTTP reason) on one line, the token masked."""
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    message = redact(" ".join(str(body.get("message") or response.reason or "").split()), [token])
    return body, message
