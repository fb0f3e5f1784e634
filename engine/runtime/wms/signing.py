"""HMAC-SHA256 request signing shared by the WMS receiver and every signed call we send.

Wire format (both directions)::

    X-Omsflow-Timestamp: <unix seconds, decimal>
    X-Omsflow-Signature: sha256=<hex of HMAC-SHA256(secret, TIMESTAMP + "." + BODY)>

``TIMESTAMP`` is the header's exact text and ``BODY`` the raw request bytes. The receiver
compares with ``hmac.compare_digest`` and refuses timestamps more than five minutes away
from its clock (either side), so a captured request cannot be replayed later. Replays
inside the window are stopped by the receiver's idempotency on ``event_id``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping

from engine.errors import ConfigError, OmsflowError
from engine.runtime.settings import Secret

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "TOLERANCE_SECONDS",
    "BadSignature",
    "MalformedSignature",
    "MissingSignature",
    "SignatureError",
    "StaleTimestamp",
    "compute_signature",
    "sign_request",
    "verify",
]

TIMESTAMP_HEADER = "X-Omsflow-Timestamp"
SIGNATURE_HEADER = "X-Omsflow-Signature"
TOLERANCE_SECONDS = 300

_TS_RE = re.compile(r"^[0-9]{1,12}$")
_SIG_RE = re.compile(r"^sha256=([0-9a-f]{64})$")


class SignatureError(OmsflowError):
    """A signed request failed authentication; the receiver answers 401 and changes nothing."""

    exit_code = 77
    reason: str = "unauthenticated"


class MissingSignature(SignatureError):
    """The timestamp or signature header is absent."""

    reason = "missing"


class MalformedSignature(SignatureError):
    """A header is present but not in the documented format."""

    reason = "malformed"


class BadSignature(SignatureError):
    """The signature does not match the body, timestamp and shared secret."""

    reason = "bad_signature"


class StaleTimestamp(SignatureError):
    """The timestamp is outside the tolerance window (old, or in the future)."""

    reason = "stale"


def _key(secret: Secret | str | bytes) -> bytes:
    if isinstance(secret, Secret):
        raw: str | bytes = secret.reveal()
    else:
        raw = secret
    key = raw.encode() if isinstance(raw, str) else raw
    if not key:
        raise ConfigError("the WMS secret is empty (fix: set OMSFLOW_WMS_SECRET)")
    return key


def compute_signature(secret: Secret | str | bytes, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` for ``timestamp`` (the header text) and the raw ``body``."""
    mac = hmac.new(_key(secret), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def sign_request(secret: Secret | str | bytes, body: bytes, now: float) -> dict[str, str]:
    """The two headers that sign ``body`` at unix time ``now`` (seconds; fraction dropped)."""
    timestamp = str(int(now))
    return {
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: compute_signature(secret, timestamp, body),
    }


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    for key, val in headers.items():
        if key.lower() == wanted:
            return val
    return None


def verify(
    secret: Secret | str | bytes,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    *,
    tolerance: float = TOLERANCE_SECONDS,
) -> None:
    """Return if ``headers`` sign ``body`` with ``secret`` at a time within ``tolerance`` of
    ``now``; raise ``MissingSignature``, ``MalformedSignature``, ``BadSignature`` or (for an
    authentic but old or future request) ``StaleTimestamp``. Header names are matched
    case-insensitively."""
    key = _key(secret)
    timestamp = _header(headers, TIMESTAMP_HEADER)
    signature = _header(headers, SIGNATURE_HEADER)
    if timestamp is None or signature is None:
        missing = TIMESTAMP_HEADER if timestamp is None else SIGNATURE_HEADER
        raise MissingSignature(f"{missing} header is missing")
    timestamp, signature = timestamp.strip(), signature.strip()
    if not _TS_RE.match(timestamp):
        raise MalformedSignature(f"{TIMESTAMP_HEADER} is not unix seconds")
    match = _SIG_RE.match(signature.lower())
    if match is None:
        raise MalformedSignature(f"{SIGNATURE_HEADER} is not 'sha256=<64 hex digits>'")
    expected = compute_signature(key, timestamp, body)
    if not hmac.compare_digest(expected.encode(), ("sha256=" + match.group(1)).encode()):
        raise BadSignature(f"{SIGNATURE_HEADER} does not match the body")
    if abs(now - int(timestamp)) > tolerance:
        raise StaleTimestamp(
            f"{TIMESTAMP_HEADER} is {int(now) - int(timestamp)} s away from the receiver's "
            f"clock (allowed: {int(tolerance)} s)"
        )
