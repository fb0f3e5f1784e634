"""The ``omsflow store`` commands: connect, list, update-key, rename, remove, states."""

from __future__ import annotations

from typing import Any

import click

from clicmds.common import (
    Runtime,
    emit_json,
    interrupted,
    make_progress,
    pass_runtime,
    print_report,
)

# ---- store


@click.group("store")
def store_group() -> None:
    """Connected PrestaShop stores (URL + webservice key, proven before saving)."""


@store_group.command("connect")
@click.option("--url", required=True, help="The shop's base URL (the webservice is URL/api).")
@click.option("--key", "key", default=None, help="Webservice key (prefer --key-env).")
@click.option("--key-env", default=None, help="Read the key from this environment variable.")
@click.option("--name", default=None, help="Store name (default: the URL's host).")
@click.option("--insecure", is_flag=True, help="Skip TLS verification (logged).")
@click.option("--no-sync", is_flag=True, help="Skip the catalogue sync and order backfill.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_runtime
def store_connect(
    rt: Runtime,
    url: str,
    key: str | None,
    key_env: str | None,
    name: str | None,
    insecure: bool,
    as_json: bool,
    no_sync: bool = False,
) -> None:
    """Prove URL, key and permissions (nothing is written to the store), resolve the status
    map's state names to ids, and save the store. The key is never echoed."""
    from urllib.parse import urlsplit

    from engine.runtime.channels.prestashop.connect import probe
    from engine.runtime.db import stores
    from engine.runtime.settings import Secret

    secret = Secret(_key_from(key, key_env))
    store_name = name or urlsplit(url if "://" in url else f"http://{url}").netloc or url
    bundle = rt.bundle
    report = probe(url, secret, bundle.channel, verify=not insecure)
    rt.allow_create()
    factory = rt.sessions
    if rt.created is not None:
        click.echo(f"created the database {rt.created}", err=True)
    synced: list[dict[str, Any]] = []
    with factory() as session, session.begin():
        record = stores.save_store(
            session, store_name, url, secret, report.state_ids, facts=report.facts.to_json()
        )
        saved = record.public()
    if not no_sync:  # issue 4: catalogue, then the order backfill, by themselves
        from engine.runtime.sync import run_initial_sync

        progress = make_progress(as_json)
        try:
            synced = [
                r.to_json()
                for r in run_initial_sync(factory, bundle, store_name, progress=progress)
            ]
        except KeyboardInterrupt:
            progress.close()
            interrupted(
                f"interrupted: store {store_name!r} is connected; its first sync stopped "
                f"after {sum(progress.done.values())} record(s) saved: run 'omsflow sync "
                "catalog' then 'omsflow sync orders' to finish it",
                {"store": saved, "sync_saved": dict(progress.done)},
                as_json,
            )
        finally:
            progress.close()
    from engine.runtime.effects.fulfilment import sender_gap

    gap = sender_gap(
        report.facts.to_json().get("shop") or {},
        getattr(bundle.channel.fulfilment, "ship_from", None),
    )
    for warning in [*report.warnings, *([gap] if gap else [])]:
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        emit_json({"store": saved, "probe": report.to_json(), "sync": synced})
        return
    for doc in synced:
        print_report(doc)
    click.echo(
        f"connected store {store_name!r}: {report.shop_name or 'PrestaShop'} "
        f"(webservice {report.version or '?'}) at {report.api_url}, key {secret.masked()}"
    )
    click.echo(
        f"permissions: all {len(bundle.channel.permissions)} resources granted; "
        f"order states resolved: {len(report.state_ids)}"
        + (f", missing: {', '.join(report.missing_states)}" if report.missing_states else "")
    )
    langs = ", ".join(f"{lang.iso_code} ({lang.id})" for lang in report.facts.languages)
    click.echo(f"shop clock: {report.facts.timezone}; languages: {langs or '-'}")


@store_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_runtime
def store_list(rt: Runtime, as_json: bool) -> None:
    """Connected stores, keys masked."""
    from engine.runtime.db import stores

    factory = rt.sessions
    with factory() as session:
        rows = [r.public() for r in stores.list_stores(session)]
    if as_json:
        emit_json({"stores": rows})
        return
    if not rows:
        click.echo("no store connected (omsflow store connect --url URL --key-env VAR)")
    for r in rows:
        langs = ",".join(str(lang["iso_code"]) for lang in r["languages"]) or "-"
        click.echo(
            f"{r['name']}\t{r['url']}\tkey {r['key']}\t{len(r['state_ids'])} states\t"
            f"{r['timezone']}\t{langs}"
        )


def _key_from(key: str | None, key_env: str | None) -> str:
    import os

    from engine.errors import ConfigError

    if key_env:
        key = os.environ.get(key_env)
        if not key:
            raise ConfigError(f"environment variable {key_env} is empty or unset")
    if not key:
        raise ConfigError("no webservice key given (fix: --key KEY or --key-env VAR)")
    return key.strip()


@store_group.command("update-key")
@click.argument("name")
@click.option("--key", "key", default=None, help="The new webservice key (prefer --key-env).")
@click.option("--key-env", default=None, help="Read the new key from this environment variable.")
@click.option("--insecure", is_flag=True, help="Skip TLS verification (logged).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_runtime
def store_update_key(
    rt: Runtime, name: str, key: str | None, key_env: str | None, insecure: bool, as_json: bool
) -> None:
    """Replace a store's webservice key: proven against the store (authentication and every
    permission the channel spec needs) before it is saved, encrypted."""
    from engine.runtime.channels.prestashop.connect import probe
    from engine.runtime.db import stores
    from engine.runtime.settings import Secret

    secret = Secret(_key_from(key, key_env))
    factory = rt.sessions
    with factory() as session:
        url = stores.get_store(session, name).url
    probe(url, secret, rt.bundle.channel, verify=not insecure)
    with factory() as session, session.begin():
        saved = stores.update_key(session, name, secret).public()
    if as_json:
        emit_json({"store": saved})
        return
    click.echo(f"store {name!r}: new key {secret.masked()} proven and saved")


@store_group.command("rename")
@click.argument("name")
@click.argument("new_name")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_runtime
def store_rename(rt: Runtime, name: str, new_name: str, as_json: bool) -> None:
    """Give a connected store another name."""
    from engine.runtime.db import stores

    factory = rt.sessions
    with factory() as session, session.begin():
        saved = stores.rename_store(session, name, new_name).public()
    if as_json:
        emit_json({"store": saved})
        return
    click.echo(f"store {name!r} is now {new_name!r}")


@store_group.command("remove")
@click.argument("name")
@click.option("--force", is_flag=True, help="Also when it has open orders (they are detached).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_runtime
def store_remove(rt: Runtime, name: str, force: bool, as_json: bool) -> None:
    """Forget a store: its bindings, cursors and schedules go; its orders stay in the OMS.
    Refused while it has open orders (state not final) unless --force."""
    from engine.runtime.db import stores

    machine = rt.bundle.machine
    open_states = frozenset(st.name for st in machine.states if not st.final and not st.pseudo)
    factory = rt.sessions
    with factory() as session, session.begin():
        done = stores.remove_store(session, name, open_states=open_states, force=force)
    if as_json:
        emit_json(
            {
                "removed": done.name,
                "open_orders": list(done.open_orders),
                "orders_detached": done.orders_detached,
                "effects_dropped": done.effects_dropped,
            }
        )
        return
    click.echo(
        f"store {name!r} removed; {done.orders_detached} order(s) kept without a store, "
        f"{done.effects_dropped} undelivered effect(s) dropped"
    )


@store_group.command("states")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_runtime
def store_states(rt: Runtime, name: str | None, as_json: bool) -> None:
    """The store's order states (read from it now) and what the channel spec does with each:
    which OMS states push it, which trigger imports or follows it."""
    channel = rt.bundle.channel
    record = rt.store(name)
    states = rt.adapter(record).order_states()
    by_id: dict[int, list[str]] = {}
    for spec_name, sid in record.state_ids.items():
        by_id.setdefault(int(sid), []).append(spec_name)
    smap = channel.status_map
    rows: list[dict[str, Any]] = []
    for st in sorted(states, key=lambda s: s.id):
        names = by_id.get(st.id, [])
        pushed_by = sorted(o for o, ps in smap.outbound.items() if ps in names)
        rule = next((smap.inbound[n] for n in names if n in smap.inbound), None)
        rows.append(
            {
                "id": st.id,
                "name": st.name,
                "spec_names": names,
                "pushed_by": pushed_by,
                "imported": any(n in smap.imported for n in names),
                "import_trigger": rule.import_trigger if rule else None,
                "change_trigger": rule.change_trigger if rule else None,
            }
        )
    if as_json:
        emit_json({"store": record.name, "states": rows})
        return
    for r in rows:
        parts = []
        if r["pushed_by"]:
            parts.append("pushed by " + ", ".join(r["pushed_by"]))
        if r["import_trigger"]:
            parts.append(f"imported via {r['import_trigger']}")
        if r["change_trigger"]:
            parts.append(f"fires {r['change_trigger']}")
        click.echo(f"{r['id']}\t{r['name']}\t{'; '.join(parts) or '(not used by the spec)'}")
