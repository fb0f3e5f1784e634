"""Signed HTTP calls to the WMS side: test/CLI events to our receiver, shipping details out.

- ``send_event``: what ``omsflow wms send`` does — one signed event to a running receiver;
  every HTTP answer is returned as ``(status, json)`` so the CLI can show 401/404/409.
- ``post_shipping_details``: what the ``notify_wms`` effect does — AWB, tracking id,
  carrier and label to the WMS endpoint, signed the same way; failures raise
  ``ChannelUnavailable`` (retryable: connection, timeout, 408/425/429/5xx) or
  ``ChannelAuthFailed`` / ``ChannelRejected`` (not retried), so the outbox can decide.

Both take ``transport=`` (an ``httpx.BaseTransport``) as the test seam and ``now=`` (unix
seconds) for the signature timestamp. Messages never contain the secret.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import httpx

from engine.errors import ChannelAuthFailed, ChannelRejected, ChannelUnavailable
from engine.runtime.fulfilment.awb import Shipment
from engine.runtime.settings import Secret, redact
from engine.runtime.wms.signing import sign_request

__all__ = [
    "DEFAULT_TIMEOUT",
    "events_url",
    "post_shipping_details",
    "send_event",
    "shipping_details_payload",
]

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
_CHANNEL = "wms"
_RETRYABLE = {408, 425, 429}


def events_url(url: str) -> str:
    """The receiver's events URL: a bare base URL gets ``/wms/events`` appended."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {redact(url)!r}")
    if parts.path in ("", "/"):
        parts = parts._replace(path="/wms/events")
    return urlunsplit(parts)


def _encode(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def _post(
    url: str,
    secret: Secret,
    body: bytes,
    *,
    now: float | None,
    transport: httpx.BaseTransport | None,
    timeout: httpx.Timeout | float,
    extra_headers: Mapping[str, str] | None = None,
    resource: str,
) -> httpx.Response:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    headers.update(sign_request(secret, body, time.time() if now is None else now))
    if extra_headers:
        headers.update(extra_headers)
    try:
        with httpx.Client(transport=transport, timeout=timeout, follow_redirects=False) as client:
            return client.post(url, content=body, headers=headers)
    except httpx.TimeoutException as exc:
        raise ChannelUnavailable(
            f"WMS at {redact(url)} timed out ({type(exc).__name__})",
            channel=_CHANNEL,
            resource=resource,
        ) from None
    except httpx.TransportError as exc:
        raise ChannelUnavailable(
            f"WMS at {redact(url)} is unreachable ({type(exc).__name__})",
            channel=_CHANNEL,
            resource=resource,
        ) from None


def _json_or_text(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except (ValueError, UnicodeDecodeError):
        return {"text": response.text[:500]} if response.content else {}
    return data if isinstance(data, dict) else {"data": data}


def send_event(
    url: str,
    secret: Secret,
    type: str,  # the wire field's name
    order_reference: str,
    *,
    event_id: str | None = None,
    occurred_at: datetime | str | None = None,
    extra: Mapping[str, Any] | None = None,
    transport: httpx.BaseTransport | None = None,
    timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    now: float | None = None,
) -> tuple[int, dict[str, Any]]:
    """POST one signed event to the receiver at ``url`` (base or full events URL).

    Defaults: ``event_id`` a fresh UUID4 (pass one to replay), ``occurred_at`` now in UTC.
    Returns ``(status, json)`` for any HTTP answer; raises ``ChannelUnavailable`` only when
    no answer came (connection refused, timeout).
    """
    if occurred_at is None:
        stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    elif isinstance(occurred_at, datetime):
        stamp = occurred_at.isoformat()
    else:
        stamp = occurred_at
    payload: dict[str, Any] = dict(extra or {})
    payload.update(
        event_id=event_id or str(uuid.uuid4()),
        type=type,
        order_reference=order_reference,
        occurred_at=stamp,
    )
    response = _post(
        events_url(url),
        secret,
        _encode(payload),
        now=now,
        transport=transport,
        timeout=timeout,
        resource="wms_events",
    )
    return response.status_code, _json_or_text(response)


def shipping_details_payload(
    shipment: Shipment,
    order_reference: str,
    *,
    label: Literal["base64", "path", "none"] = "base64",
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON document sent to the WMS for one shipment.

    ``{"order_reference", "awb", "tracking_id", "carrier", "label": {"filename",
    "content_type", "base64" | "path"}}``; ``label="none"`` leaves the label out.
    """
    payload: dict[str, Any] = dict(extra or {})
    payload.update(
        order_reference=order_reference,
        awb=shipment.awb,
        tracking_id=shipment.tracking_id,
        carrier=shipment.carrier_name,
    )
    if label != "none" and shipment.label_path is not None:
        path = Path(shipment.label_path)
        doc: dict[str, Any] = {"filename": path.name, "content_type": "application/pdf"}
        if label == "base64":
            doc["base64"] = base64.b64encode(path.read_bytes()).decode("ascii")
        else:
            doc["path"] = str(path.resolve())
        payload["label"] = doc
    return payload


def post_shipping_details(
    url: str,
    secret: Secret,
    payload: Mapping[str, Any],
    *,
    idempotency_key: str | None = None,
    transport: httpx.BaseTransport | None = None,
    timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    now: float | None = None,
) -> dict[str, Any]:
    """POST the signed shipping details; return the WMS's JSON answer on 2xx.

    ``idempotency_key`` (e.g. the outbox row's key) is sent as ``Idempotency-Key`` so a
    WMS can ignore a retried delivery. Raises ``ChannelUnavailable`` (retry),
    ``ChannelAuthFailed`` (401/403: the shared secret differs) or ``ChannelRejected``.
    """
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    response = _post(
        url,
        secret,
        _encode(payload),
        now=now,
        transport=transport,
        timeout=timeout,
        extra_headers=headers,
        resource="shipping_details",
    )
    status = response.status_code
    if 200 <= status < 300:
        return _json_or_text(response)
    detail = redact(response.text[:200].replace("\n", " "), secret.reveal())
    where = f"WMS at {redact(url)} answered {status}"
    if status >= 500 or status in _RETRYABLE:
        retry_after = response.headers.get("Retry-After", "")
        raise ChannelUnavailable(
            f"{where}: {detail}",
            channel=_CHANNEL,
            resource="shipping_details",
            status=status,
            retry_after=float(retry_after) if retry_after.isdigit() else None,
        )
    if status in (401, 403):
        raise ChannelAuthFailed(
            f"{where}: the signature was refused (fix: the same OMSFLOW_WMS_SECRET on both sides)",
            channel=_CHANNEL,
            resource="shipping_details",
            status=status,
        )
    raise ChannelRejected(
        f"{where}: {detail}", channel=_CHANNEL, resource="shipping_details", status=status
    )
