"""Encrypted values as DigitalOcean returns them: ``EV[1:<nonce>:<sealed>]``.

DigitalOcean encrypts the value of a SECRET environment variable (and an image's
registry credentials) on first submission, returns only the encrypted string and
expects that string back on later updates (``app_variable_definition`` in the
OpenAPI description). Its own strings are NaCl secret boxes: a 24-byte nonce,
then a 16-byte tag and the ciphertext, both in base64. The simulator makes
strings of the same shape with the standard library (HMAC-SHA256 as key stream
and tag): they only have to behave like DigitalOcean's, and a value that was
not sealed with the simulator's key, or was altered, does not open.
"""

import base64
import binascii
import hashlib
import hmac
import re
import secrets

from ..appspec import ENCRYPTED_RE

NONCE_BYTES = 24
TAG_BYTES = 16
_PARTS_RE = re.compile(r"^EV\[1:([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)\]$")


def new_key():
    return secrets.token_bytes(32)


def is_sealed(value):
    """An encrypted value, to keep, rather than a new plain one, to encrypt."""
    return isinstance(value, str) and bool(ENCRYPTED_RE.match(value))


def _mac(key, *parts):
    return hmac.new(key, b"".join(parts), hashlib.sha256).digest()


def _xor(key, nonce, data):
    stream = b"".join(_mac(key, b"stream", nonce, counter.to_bytes(4, "big"))
                      for counter in range(len(data) // 32 + 1))
    return bytes(a ^ b for a, b in zip(data, stream, strict=False))


def seal(key, plain):
    """``plain`` encrypted under ``key``, with a new nonce each time."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    body = _xor(key, nonce, plain.encode())
    tag = _mac(key, b"tag", nonce, body)[:TAG_BYTES]
    return (f"EV[1:{base64.b64encode(nonce).decode()}:"
            f"{base64.b64encode(tag + body).decode()}]")


def unseal(key, value):
    """The plain value ``value`` was sealed from under ``key``; None if it was not
    sealed with this key or was altered since."""
    match = _PARTS_RE.match(value) if isinstance(value, str) else None
    if not match:
        return None
    try:
        nonce = base64.b64decode(match[1], validate=True)
        sealed = base64.b64decode(match[2], validate=True)
    except binascii.Error:
        return None
    tag, body = sealed[:TAG_BYTES], sealed[TAG_BYTES:]
    if len(nonce) != NONCE_BYTES or not hmac.compare_digest(
            tag, _mac(key, b"tag", nonce, body)[:TAG_BYTES]):
        return None
    return _xor(key, nonce, body).decode()
