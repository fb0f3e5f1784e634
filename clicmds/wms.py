"""The ``omsflow wms`` commands and ``omsflow serve`` (the WMS receiver)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from clicmds.common import (
    Runtime,
    emit_json,
    fail,
    pass_runtime,
)


@click.group("wms")
def wms_group() -> None:
    """Warehouse events: send a signed event to a receiver, or apply one directly."""


# ================ wms, serve (issue 5)


def _wms_secret(rt: Runtime) -> Any:
    """The shared WMS secret from OMSFLOW_WMS_SECRET, as a ``Secret`` (never printed)."""
    from engine.errors import ConfigError
    from engine.runtime.settings import RedactingFilter

    secret = rt.settings.wms_secret
    if not secret:
        raise ConfigError(
            "OMSFLOW_WMS_SECRET is not set (fix: export OMSFLOW_WMS_SECRET=<the secret shared "
            "with the WMS>)"
        )
    RedactingFilter.register(secret.reveal())
    return secret


def _wms_answer_line(status: int, answer: dict[str, Any]) -> str:
    outcome = answer.get("outcome", "?")
    parts = [f"{status} {outcome}"]
    if answer.get("order_reference"):
        parts.append(f"order {answer['order_reference']}")
    if answer.get("trigger"):
        parts.append(f"trigger {answer['trigger']}")
    if answer.get("state"):
        parts.append(f"state {answer['state']}")
    for key in ("detail", "error"):
        if answer.get(key):
            parts.append(str(answer[key]))
    return parts[0] + (": " + ", ".join(parts[1:]) if len(parts) > 1 else "")


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port (0: a free one).")
@click.option("--log-json", is_flag=True, help="One JSON object per log line (stderr).")
@click.option(
    "--allow-stranded",
    is_flag=True,
    help="Start even when the specs strand orders in flight (see omsflow spec check).",
)
@pass_runtime
def serve(rt: Runtime, host: str, port: int, log_json: bool, allow_stranded: bool) -> None:
    """Run the WMS event receiver (POST /wms/events, GET /health) until Ctrl-C.

    Events are signed with OMSFLOW_WMS_SECRET and applied to the OMS database
    (OMSFLOW_DATABASE_URL) in one transaction each; replays are acknowledged once.
    Each event is logged on stderr with its outcome; refused signatures as warnings."""
    import signal
    import time

    from engine.runtime.logging import setup_logging
    from engine.runtime.specdeploy import guard_start
    from engine.runtime.wms.receiver import WmsReceiver
    from engine.runtime.wms.server import start_in_thread
    from engine.runtime.wms.webhook import EVENTS_PATH, create_wms_app

    secret = _wms_secret(rt)
    setup_logging(json_lines=log_json)
    bundle = rt.bundle
    guard_start(rt.settings, bundle, "omsflow serve", allow=allow_stranded)
    factory = rt.sessions
    app = create_wms_app(
        WmsReceiver(factory, bundle), secret, event_types=bundle.channel.fulfilment.wms_events
    )

    def _terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        server = start_in_thread(app, host, port)
    except (OSError, RuntimeError) as exc:
        fail(f"cannot listen on {host}:{port} ({exc})")
        return
    click.echo(f"wms receiver: {server.url}{EVENTS_PATH}  (health: {server.url}/health)")
    click.echo("Ctrl-C to stop")
    sys.stdout.flush()
    try:
        while server.thread.is_alive():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)


F = TypeVar("F", bound=Callable[..., Any])


def _event_params(command: F) -> F:
    """TYPE ORDER_REF --event-id --occurred-at: one WMS event, as send and apply take it."""
    for param in reversed(
        (
            click.argument("event_type", metavar="TYPE"),
            click.argument("order_ref"),
            click.option(
                "--event-id",
                default=None,
                help="Event id (default: a fresh UUID; reuse it with the same --occurred-at "
                "to resend).",
            ),
            click.option(
                "--occurred-at",
                default=None,
                help="ISO-8601 time with offset (default: now); part of the body a resend "
                "repeats.",
            ),
        )
    ):
        command = param(command)
    return command


@wms_group.command("send")
@click.option(
    "--url",
    default="http://127.0.0.1:8000",
    show_default=True,
    envvar="OMSFLOW_WMS_RECEIVER_URL",
    help="The receiver's base URL (or its full /wms/events URL).",
)
@_event_params
@click.option("--json", "as_json", is_flag=True, help="Print the receiver's answer as JSON.")
@pass_runtime
def wms_send(
    rt: Runtime,
    event_type: str,
    order_ref: str,
    url: str,
    event_id: str | None,
    occurred_at: str | None,
    as_json: bool,
) -> None:
    """Send one signed WMS event (picked, packed, handed_over, delivered) to a running
    receiver and print its answer; exits non-zero unless it was accepted (2xx)."""
    from engine.runtime.wms.client import send_event

    try:
        status, answer = send_event(
            url,
            _wms_secret(rt),
            event_type,
            order_ref,
            event_id=event_id,
            occurred_at=occurred_at,
        )
    except ValueError as exc:
        fail(f"--url: {exc}")
        return
    if as_json:
        emit_json({"status": status, **answer})
    else:
        click.echo(_wms_answer_line(status, answer))
    if not 200 <= status < 300:
        sys.exit(1)


@wms_group.command("apply")
@_event_params
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@pass_runtime
def wms_apply(
    rt: Runtime,
    event_type: str,
    order_ref: str,
    event_id: str | None,
    occurred_at: str | None,
    as_json: bool,
) -> None:
    """Apply one WMS event directly to the database (no HTTP, no signature), exactly as the
    receiver would: source wms, one answer per event id (a resend gets the first answer
    again, another body under the same id is refused). Exits non-zero unless 2xx."""
    import uuid

    from engine.runtime.wms.receiver import WmsReceiver, result_for
    from engine.runtime.wms.webhook import InvalidEvent, build_event

    bundle = rt.bundle
    try:
        when = datetime.fromisoformat(occurred_at) if occurred_at else datetime.now(UTC)
    except ValueError:
        fail(f"--occurred-at: {occurred_at!r} is not an ISO-8601 time (e.g. 2025-03-01T10:00Z)")
        return
    try:
        event = build_event(
            event_type,
            order_ref,
            bundle.channel.fulfilment.wms_events,
            event_id=event_id or str(uuid.uuid4()),
            occurred_at=when,
        )
    except InvalidEvent as exc:
        fail(str(exc))
        return
    factory = rt.sessions
    receiver = WmsReceiver(factory, bundle)
    result = receiver.apply(event)
    answer = receiver.replay(event) if result.duplicate else result_for(result)
    blockers = [b.message for b in result.blockers]
    doc = {
        "status": answer.status_code,
        "outcome": answer.outcome.value,
        "replay": answer.replay,
        "event_id": event.event_id,
        "type": event.type,
        "trigger": event.trigger,
        "order_reference": event.order_reference,
        "from_state": result.from_state,
        "state": answer.state,
        "effects": list(result.effects),
        "blockers": blockers,
        "detail": answer.detail,
    }
    ok = 200 <= answer.status_code < 300
    if as_json:
        emit_json(doc)
    elif answer.replay:
        line = f"replay: event {event.event_id} was answered before: {answer.outcome.value}"
        click.echo(line + (f" ({answer.detail})" if answer.detail else ""), err=not ok)
    elif result.outcome == "applied":
        click.echo(
            f"applied: order {order_ref} {result.from_state} -> {result.state} "
            f"(trigger {event.trigger}; effects: {', '.join(result.effects) or 'none'})"
        )
    elif result.outcome == "acknowledged":
        click.echo(f"acknowledged: order {order_ref} stays {result.state}: {answer.detail}")
    elif answer.outcome.value == "reused":
        click.echo(f"refused: {answer.detail}", err=True)
    else:
        click.echo(
            f"refused: order {order_ref} stays {result.state}: " + "; ".join(blockers), err=True
        )
    if not ok:
        sys.exit(1)
