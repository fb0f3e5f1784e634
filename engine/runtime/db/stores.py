"""Connected stores: save, find and list them. The key leaves this module only as ``Secret``.

Functions receive a ``Session`` and never commit; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import ConfigError, NotFound
from engine.runtime.settings import Secret

from .base import utcnow
from .secrets import KeyBox
from .tables import StoreRow


def _box(session: Session) -> KeyBox:
    return KeyBox(session.get_bind().engine.url.render_as_string(hide_password=False))


@dataclass(frozen=True)
class StoreRecord:
    """A store as the rest of omsflow sees it; ``key`` masks itself when printed."""

    id: int
    name: str
    channel: str
    url: str
    key: Secret
    state_ids: Mapping[str, int] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)
    """What the store told at connect (``shop.ShopFacts.to_json()``; {} before)."""

    @property
    def timezone(self) -> str:
        """The shop's clock (``PS_TIMEZONE``); UTC until the store told otherwise."""
        return str(self.facts.get("timezone") or "UTC")

    def public(self) -> dict[str, Any]:
        """A JSON-safe view without the key (the masked key only)."""
        return {
            "id": self.id,
            "name": self.name,
            "channel": self.channel,
            "url": self.url,
            "key": self.key.masked(),
            "timezone": self.timezone,
            "languages": [
                {"id": d.get("id"), "iso_code": d.get("iso_code")}
                for d in self.facts.get("languages") or ()
                if isinstance(d, Mapping)
            ],
            "version": self.facts.get("version") or None,
            "state_ids": dict(self.state_ids),
            "facts": dict(self.facts),
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
        }


def _record(row: StoreRow, box: KeyBox) -> StoreRecord:
    return StoreRecord(
        id=row.id,
        name=row.name,
        channel=row.channel,
        url=row.url,
        key=Secret(box.open(row.api_key, row.name)),
        state_ids={str(k): int(v) for k, v in (row.state_ids or {}).items()},
        created_at=row.created_at,
        updated_at=row.updated_at,
        facts=dict(row.facts or {}),
    )


def save_store(
    session: Session,
    name: str,
    url: str,
    key: str | Secret,
    state_ids: Mapping[str, int],
    channel: str = "prestashop",
    facts: Mapping[str, Any] | None = None,
) -> StoreRecord:
    """Insert or update the store called ``name`` (connect again = update url, key, ids;
    ``facts``, when given, replace what the store told before)."""
    if not name.strip():
        raise ConfigError("store name is empty (fix: --name NAME)")
    box = _box(session)
    raw_key = box.seal(key.reveal() if isinstance(key, Secret) else key)
    row = session.scalars(select(StoreRow).where(StoreRow.name == name)).one_or_none()
    same = find_by_url(session, url)
    if same is not None and (row is None or same.id != row.id):
        raise ConfigError(
            f"the store at {url} is already connected as {same.name!r} (fix: omsflow store "
            f"update-key {same.name}, or omsflow store remove {same.name} first)"
        )
    if row is None:
        row = StoreRow(name=name, channel=channel, url=url, api_key=raw_key)
        session.add(row)
    else:
        row.channel = channel
        row.url = url
        row.api_key = raw_key
        row.updated_at = utcnow()
    row.state_ids = {str(k): int(v) for k, v in state_ids.items()}
    if facts is not None:
        row.facts = dict(facts)
    session.flush()
    return _record(row, box)


def update_facts(session: Session, store_id: int, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``changes`` into the store's facts (e.g. a new ``timezone`` a sync saw);
    returns the facts as saved."""
    row = session.get(StoreRow, store_id)
    if row is None:
        raise NotFound(f"store #{store_id} not found")
    merged = {**(row.facts or {}), **changes}
    if merged != (row.facts or {}):
        row.facts = merged  # a new dict: the JSON column sees the change
        row.updated_at = utcnow()
        session.flush()
    return merged


def get_store_row(session: Session, name: str | None = None) -> StoreRow:
    """The ``StoreRow`` named ``name``; with ``None``, the only store there is.

    Raises:
        NotFound: no store has that name.
        ConfigError: ``None`` was given and there are zero or several stores.
    """
    if name is not None:
        row = session.scalars(select(StoreRow).where(StoreRow.name == name)).one_or_none()
        if row is None:
            known = ", ".join(session.scalars(select(StoreRow.name).order_by(StoreRow.name)))
            raise NotFound(f"store {name!r} not found (known: {known or 'none'})")
        return row
    rows = list(session.scalars(select(StoreRow).order_by(StoreRow.name).limit(2)))
    if not rows:
        raise ConfigError(
            "no store connected (fix: omsflow store connect --url URL --key-env VAR)"
        )
    if len(rows) > 1:
        names = ", ".join(session.scalars(select(StoreRow.name).order_by(StoreRow.name)))
        raise ConfigError(f"several stores are connected ({names}) (fix: pass --store NAME)")
    return rows[0]


def get_store(session: Session, name: str | None = None) -> StoreRecord:
    """The store named ``name``; with ``None``, the only store (see ``get_store_row``)."""
    return _record(get_store_row(session, name), _box(session))


def list_stores(session: Session) -> list[StoreRecord]:
    """Every connected store, by name."""
    box = _box(session)
    return [_record(r, box) for r in session.scalars(select(StoreRow).order_by(StoreRow.name))]


def _same_place(url: str) -> str:
    """A store URL reduced to what identifies the shop: scheme and host lower-cased, no
    trailing ``/`` or ``/api``."""
    from urllib.parse import urlsplit

    text = url.strip().rstrip("/")
    text = text.removesuffix("/api").rstrip("/")
    parts = urlsplit(text if "://" in text else f"http://{text}")
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path}"


def find_by_url(session: Session, url: str) -> StoreRow | None:
    """The store already connected at ``url`` (with or without ``/api``), if any."""
    want = _same_place(url)
    for row in session.scalars(select(StoreRow).order_by(StoreRow.id)):
        if _same_place(row.url) == want:
            return row
    return None


def update_key(session: Session, name: str, key: str | Secret) -> StoreRecord:
    """Replace a store's webservice key (stored encrypted)."""
    row = get_store_row(session, name)
    box = _box(session)
    row.api_key = box.seal(key.reveal() if isinstance(key, Secret) else key)
    row.updated_at = utcnow()
    session.flush()
    return _record(row, box)


def rename_store(session: Session, old: str, new: str) -> StoreRecord:
    """Give a store another name (everything refers to it by id)."""
    if not new.strip():
        raise ConfigError("the new store name is empty")
    row = get_store_row(session, old)
    taken = session.scalars(select(StoreRow).where(StoreRow.name == new)).one_or_none()
    if taken is not None and taken.id != row.id:
        raise ConfigError(f"a store named {new!r} exists already (fix: choose another name)")
    row.name = new
    row.updated_at = utcnow()
    session.flush()
    return _record(row, _box(session))


def _count(session: Session, stmt: Any) -> int:
    result = session.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class Removal:
    """What ``remove_store`` did (or, refused, would do)."""

    name: str
    open_orders: tuple[str, ...]
    orders_detached: int = 0
    effects_dropped: int = 0


def remove_store(
    session: Session, name: str, *, open_states: frozenset[str], force: bool
) -> Removal:
    """Forget a store: its bindings, cursors, schedules and sync history go; its orders stay
    (detached from it, history kept); its undelivered effects are closed as superseded.

    Raises:
        ConfigError: the store has open orders (state not final) and ``force`` is off; the
            message lists them.
    """
    from sqlalchemy import update

    from .tables import OrderRow, OutboxRow

    row = get_store_row(session, name)
    open_refs = tuple(
        session.scalars(
            select(OrderRow.reference)
            .where(OrderRow.store_id == row.id, OrderRow.state.in_(sorted(open_states)))
            .order_by(OrderRow.id)
        )
    )
    if open_refs and not force:
        shown = ", ".join(open_refs[:10]) + (" ..." if len(open_refs) > 10 else "")
        raise ConfigError(
            f"store {name!r} has {len(open_refs)} open order(s): {shown} (fix: finish or cancel "
            "them first, or pass --force to detach them and drop their undelivered effects)"
        )
    dropped = _count(
        session,
        update(OutboxRow)
        .where(OutboxRow.store_id == row.id, OutboxRow.state.in_(("pending", "leased", "dead")))
        .values(state="superseded", last_error=f"store {name!r} removed", leased_until=None),
    )
    session.execute(update(OutboxRow).where(OutboxRow.store_id == row.id).values(store_id=None))
    detached = _count(
        session, update(OrderRow).where(OrderRow.store_id == row.id).values(store_id=None)
    )
    session.delete(row)
    session.flush()
    return Removal(name, open_refs, detached, dropped)
