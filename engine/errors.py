"""The one exception type the engine raises, and secret redaction.

Every failure that leaves the engine carries an SOP error code from
:mod:`.error_catalogue`, so the Odoo layer can show the description, severity
and mitigation without knowing where the failure came from.
"""

import re

from .error_catalogue import ERROR_CODES

REDACTED = "***"
# DigitalOcean (dop_v1_/doo_v1_/dor_v1_) and GitHub (ghp_, gho_, ghu_, ghs_, ghr_,
# github_pat_) tokens, and Slack incoming-webhook paths, which are secrets themselves.
_TOKEN_RE = re.compile(
    r"\b(do[por]_v1_|gh[pousr]_|github_pat_|hooks\.slack\.com/services/)[A-Za-z0-9_/]+")
# "Bearer x" anywhere; GitHub's "Authorization: token x" only in that header.
_BEARER_RE = re.compile(r"(?i)(bearer\s+|authorization:\s*token\s+)[^\s\"',]+")
_QUERY_TOKEN_RE = re.compile(r"(?i)([?&](?:token|access_token)=)[^&\s\"']+")


def redact(text, secrets=()):
    """Return ``text`` with the given secrets and anything token-shaped masked."""
    if text is None:
        return text
    text = str(text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    text = _TOKEN_RE.sub(lambda m: m.group(1) + REDACTED, text)
    text = _BEARER_RE.sub(lambda m: m.group(1) + REDACTED, text)
    return _QUERY_TOKEN_RE.sub(lambda m: m.group(1) + REDACTED, text)


class DeployError(Exception):
    """A failure with an SOP error code, a plain message and optional details.

    ``details`` is plain JSON-able data (HTTP status, request id, offending
    path, ...). ``retryable`` tells the caller that the same action may succeed
    later without any change (rate limits, transient 5xx).
    """

    def __init__(self, code, message, *, details=None, retryable=False):
        if code not in ERROR_CODES:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = dict(details or {})
        self.retryable = retryable

    @property
    def entry(self):
        """The catalogue entry: severity, description, mitigation."""
        return ERROR_CODES[self.code]

    def to_dict(self):
        return {
            "code": self.code,
            "message": self.message,
            "details": self.details,
            "retryable": self.retryable,
            "severity": self.entry.severity,
            "mitigation": self.entry.mitigation,
        }

    def __repr__(self):
        return f"DeployError({self.code!r}, {self.message!r})"
