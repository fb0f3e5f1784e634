"""The ``omsflow orders`` commands: list, show, fire, ack."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import click

from clicmds.common import (
    Runtime,
    emit_json,
    open_runtime,
    pass_runtime,
)


@click.group("orders")
def orders_group() -> None:
    """Orders in the OMS: list, show, fire a manual transition."""


@orders_group.command("list")
@click.option("--state", default=None, help="Only orders in this state.")
@click.option("--attention", is_flag=True, help="Only orders flagged for attention.")
@click.option(
    "--country", default=None, help="Only orders shipping to this country (ISO, e.g. FR)."
)
@click.option("--carrier", default=None, help="Only orders with this carrier (its name).")
@click.option("--since", "since", default=None, help="Only orders placed on/after (YYYY-MM-DD).")
@click.option("--until", "until", default=None, help="Only orders placed before (YYYY-MM-DD).")
@click.option("--json", "as_json", is_flag=True, help="Print the orders as JSON.")
@pass_runtime
def orders_list(
    rt: Runtime,
    state: str | None,
    attention: bool,
    country: str | None,
    carrier: str | None,
    since: str | None,
    until: str | None,
    as_json: bool,
) -> None:
    """Orders, oldest first, with their state and the store's status."""
    from engine.runtime import queries

    factory = open_runtime(rt).sessions
    with factory() as session:
        rows = queries.list_orders(
            session,
            state=state,
            attention=attention,
            country=_country(country),
            carrier=carrier,
            since=_day("--since", since),
            until=_day("--until", until),
        )
    if as_json:
        emit_json({"orders": rows})
        return
    for r in rows:
        flag = f"\tATTENTION: {r['attention_reason']}" if r["needs_attention"] else ""
        click.echo(
            f"{r['reference']}\t#{r['id']}\t{r['state']}\t{r['channel_state'] or '-'}\t"
            f"{r['ordered_at']}\t{r['lines']} lines\t{r['total_paid'] or '-'} "
            f"{r['currency'] or ''}\t{r['country'] or '-'}\t{r['carrier'] or '-'}{flag}"
        )
    click.echo(f"{len(rows)} orders", err=True)


def _address_line(addr: dict[str, Any]) -> str:
    """An address on one line: name, company, street, postcode city, state, country."""
    if not addr:
        return "-"
    name = " ".join(str(addr[k]) for k in ("firstname", "lastname") if addr.get(k))
    place = " ".join(str(addr[k]) for k in ("postcode", "city") if addr.get(k))
    country = addr.get("country") or addr.get("country_iso")
    parts = (
        name,
        addr.get("company"),
        addr.get("address1"),
        addr.get("address2"),
        place,
        addr.get("state"),
        country,
        addr.get("phone") or addr.get("phone_mobile"),
    )
    return ", ".join(str(p) for p in parts if p)


def _country(text: str | None) -> str | None:
    """An ISO 3166-1 alpha-2 code (``fr`` -> ``FR``); anything else is a one-line error."""
    from engine.errors import ConfigError

    if text is None:
        return None
    code = text.strip().upper()
    if len(code) != 2 or not code.isascii() or not code.isalpha():
        raise ConfigError(
            f"--country {text!r}: expected a two-letter ISO 3166 country code, e.g. FR"
        )
    return code


def _number(value: object) -> str:
    """A decimal as a person writes it: ``0.300000`` -> ``0.3``, ``2.000000`` -> ``2``."""
    try:
        d = Decimal(str(value))
    except ArithmeticError:
        return str(value)
    if not d.is_finite():
        return str(value)
    text = f"{d:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _day(option: str, text: str | None) -> datetime | None:
    """``YYYY-MM-DD`` (or an ISO date-time; UTC unless it says otherwise) -> a UTC instant."""
    from engine.errors import ConfigError

    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected a date like 2026-11-30") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@orders_group.command("show")
@click.argument("reference")
@click.option("--store", "store_name", default=None, help="Store, when references clash.")
@click.option("--json", "as_json", is_flag=True, help="Print the order as JSON.")
@pass_runtime
def orders_show(rt: Runtime, reference: str, store_name: str | None, as_json: bool) -> None:
    """One order (reference or #id): lines, reservations, state, history, effects."""
    from engine.runtime import queries

    factory = open_runtime(rt).sessions
    with factory() as session:
        doc = queries.show_order(session, reference, store=store_name)
    if as_json:
        emit_json(doc)
        return
    click.echo(
        f"order {doc['reference']} (#{doc['id']}, store {doc['store'] or '-'} "
        f"id {doc['external_id'] or '-'}): {doc['state']}; store status "
        f"{doc['channel_state'] or '-'}"
    )
    if doc["needs_attention"]:
        click.echo(f"needs attention: {doc['attention_reason']}")
    cust = doc["customer"]
    contact = ", ".join(v for v in (cust["email"], cust["phone"]) if v)
    click.echo(f"customer: {cust['name'] or '-'}" + (f" ({contact})" if contact else ""))
    for label, key in (("ship to", "shipping_address"), ("invoice to", "invoice_address")):
        click.echo(f"{label}: {_address_line(doc[key])}")
    t = doc["totals"]
    click.echo(
        f"carrier: {doc['carrier'] or '-'}; payment: {doc['payment'] or '-'}; "
        f"currency: {doc['currency'] or '-'}"
    )
    click.echo(
        f"totals: paid {t['paid_tax_incl'] or '-'} (tax excl. {t['paid_tax_excl'] or '-'}), "
        f"products {t['products'] or '-'}, shipping {t['shipping'] or '-'}, "
        f"discounts {t['discounts'] or '-'}, wrapping {t['wrapping'] or '-'}"
    )
    for key, value in doc.get("extra", {}).items():  # the channel spec's extra: fields
        click.echo(f"{key}: {value if value not in (None, '') else '-'}")
    click.echo("lines:")
    for li in doc["lines"]:
        facts = (("weight", "weight", " kg"), ("tax_rate", "tax", " %"), ("ean13", "EAN", ""))
        extra = "".join(
            f"\t{name} {_number(li[k]) if unit else li[k]}{unit}"
            for k, name, unit in facts
            if li.get(k)
        )
        extra += "".join(f"\t{k}: {v}" for k, v in li.get("extra", {}).items() if v)
        click.echo(
            f"  {li['sku']}\tx{li['quantity']}\treserved {li['reserved']}\t"
            f"consumed {li['consumed']}\t{li['name'] or ''}{extra}"
        )
    click.echo("history:")
    for h in doc["history"]:
        reasons = "; ".join(b.get("message", "") for b in h["blockers"])
        if "by" in h:  # orders ack
            verdict = f"attention cleared by {h['by']}" + (f": {h['note']}" if h["note"] else "")
        elif h["outcome"] == "acknowledged":
            verdict = f"acknowledged: {reasons}"
        else:
            verdict = "applied" if h["applied"] else f"REFUSED: {reasons}"
        if h.get("spec_change"):
            verdict += f" ({h['spec_change']})"
        click.echo(
            f"  {h['at']}\t{h['source']}\t{h['trigger']}\t{h['from_state']} -> "
            f"{h['to_state']}\t{verdict}\tspec {h.get('spec_version') or '-'}"
        )
    for sh in doc.get("shipments", []):
        click.echo(
            f"shipment: AWB {sh['awb']}\ttracking {sh['tracking_id']}\t{sh['carrier']}\t"
            f"label {sh['label_path'] or '-'}"
        )
    waiting = [e for e in doc["effects"] if e["state"] in ("pending", "leased", "dead")]
    click.echo("effects:" if waiting else "effects: none waiting")
    for e in waiting:
        click.echo(
            f"  #{e['id']}\t{e['kind']}\t{e['state']}\tattempts {e['attempts']}"
            + (f"\t{e['last_error']}" if e["last_error"] else "")
        )


@orders_group.command("fire")
@click.argument("reference")
@click.argument("trigger")
@click.option("--store", "store_name", default=None, help="Store, when references clash.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@pass_runtime
def orders_fire(
    rt: Runtime, reference: str, trigger: str, store_name: str | None, as_json: bool
) -> None:
    """Fire a manual transition (release, pack, ready_to_ship, seller_cancel, ...).

    An unknown trigger is refused before anything is written (with a did-you-mean and the
    triggers allowed from the order's state); a trigger the lifecycle declares late from
    the order's state (pack on a Ready_to_Ship order) is acknowledged as a no-op."""
    import uuid
    from datetime import UTC, datetime

    from engine.runtime import service

    factory = open_runtime(rt).sessions
    store_id = rt.store_id(store_name)
    result = service.apply_inbound(
        factory,
        rt.bundle,
        trigger=trigger,
        source="user",
        idempotency_key=f"user:{uuid.uuid4()}",
        at=datetime.now(UTC),
        reference=reference,
        store_id=store_id,
    )
    reason = "; ".join(b.message for b in result.blockers)
    if as_json:
        emit_json(
            {
                "reference": result.reference,
                "id": result.order_id,
                "trigger": trigger,
                "outcome": result.outcome,
                "from_state": result.from_state,
                "state": result.state,
                "effects": list(result.effects),
                "reason": reason or None,
            }
        )
    elif result.applied:
        click.echo(f"order {result.reference}: {trigger}: {result.from_state} -> {result.state}")
    elif result.acknowledged:
        click.echo(f"order {result.reference}: {trigger}: {reason}")
    if not (result.applied or result.acknowledged):
        if not as_json:
            click.echo(
                f"error: order {result.reference}: {trigger} refused in "
                f"{result.from_state}: {reason}",
                err=True,
            )
        sys.exit(1)


@orders_group.command("ack")
@click.argument("reference")
@click.option("--note", default=None, help="Why it is fine now (kept in the order's history).")
@click.option("--by", "by", default=None, help="Who acknowledges (default: your login name).")
@click.option("--store", "store_name", default=None, help="Store, when references clash.")
@click.option("--json", "as_json", is_flag=True, help="Print the acknowledgement as JSON.")
@pass_runtime
def orders_ack(
    rt: Runtime,
    reference: str,
    note: str | None,
    by: str | None,
    store_name: str | None,
    as_json: bool,
) -> None:
    """Clear an order's attention flag; the history keeps who, when, the note and the reason.

    Flags also clear by themselves: one raised by a refused event when the order moves to
    another state; one raised by a dead effect only here (moving on delivers nothing)."""
    import getpass
    from datetime import UTC, datetime

    from engine.runtime import service

    if by is None:
        try:
            by = getpass.getuser()
        except (KeyError, OSError):
            by = "unknown"
    factory = open_runtime(rt).sessions
    store_id = rt.store_id(store_name)
    ack = service.acknowledge_attention(
        factory,
        reference=reference,
        store_id=store_id,
        by=by,
        note=note,
        at=datetime.now(UTC),
    )
    if as_json:
        emit_json(
            {
                "reference": ack.reference,
                "id": ack.order_id,
                "state": ack.state,
                "cleared": ack.reason,
                "by": ack.by,
                "note": ack.note,
                "at": ack.at.isoformat(),
            }
        )
    else:
        click.echo(
            f"order {ack.reference} ({ack.state}): attention cleared by {ack.by} "
            f"(was: {ack.reason or '-'})"
        )
