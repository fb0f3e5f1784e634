"""Brand (manufacturer) sync between the OMS's ``BrandRow`` and one store, both directions.

Pairs are ``BindingRow(kind="brand", external=manufacturer id, internal=BrandRow id)`` (the
catalogue sync binds the same kind). The name both sides last agreed on is kept in a second
binding, ``kind="brand_name"`` (external = manufacturer id, internal = the name), so a run
knows which side changed: only the OMS -> rename the manufacturer; only the store -> rename
the ``BrandRow``; both -> the OMS wins (``conflicts`` counts them). Unbound OMS brands are
matched to a store manufacturer by name (case-insensitive) or created there; unbound store
manufacturers become ``BrandRow``s (``from-store``/``both``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.runtime.channels.port import ListingPort
from engine.runtime.db.repository import SqlBindingRepository
from engine.runtime.db.tables import BrandRow

Direction = Literal["both", "to-store", "from-store"]


@dataclass
class BrandSyncReport:
    """Counts per action, and the names touched."""

    direction: Direction
    counts: dict[str, int] = field(default_factory=dict)
    changes: list[str] = field(default_factory=list)

    def add(self, what: str, detail: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1
        self.changes.append(f"{what}: {detail}")

    def to_json(self) -> dict[str, Any]:
        return {"direction": self.direction, "counts": self.counts, "changes": self.changes}


def sync_brands(
    session_factory: sessionmaker[Session],
    store_id: int,
    adapter: ListingPort,
    direction: Direction = "both",
) -> BrandSyncReport:
    """Make OMS brands and store manufacturers agree (see the module docstring)."""
    push = direction in ("both", "to-store")
    pull = direction in ("both", "from-store")
    report = BrandSyncReport(direction)
    manufacturers = {m.id: m for m in adapter.manufacturers()}
    with session_factory() as session, session.begin():
        bindings = SqlBindingRepository(session)
        pairs = {int(e): int(i) for e, i in bindings.all(store_id, "brand").items()}
        agreed = {int(e): n for e, n in bindings.all(store_id, "brand_name").items()}
        rows = {b.id: b for b in session.scalars(select(BrandRow).order_by(BrandRow.id))}
        bound_rows = set()

        def settle(ext: int, row: BrandRow) -> None:
            bindings.bind(store_id, "brand", str(ext), str(row.id))
            bindings.bind(store_id, "brand_name", str(ext), row.name[:100])
            bound_rows.add(row.id)

        for ext, rid in sorted(pairs.items()):
            row = rows.get(rid)
            man = manufacturers.get(ext)
            if row is None or man is None:
                continue
            bound_rows.add(row.id)
            if row.name == man.name:
                if agreed.get(ext) != row.name:
                    settle(ext, row)
                continue
            last = agreed.get(ext)
            oms_changed = last is None or row.name != last
            store_changed = last is not None and man.name != last
            if oms_changed and store_changed and last is not None:
                report.add("conflicts", f"{last!r}: OMS {row.name!r} wins over {man.name!r}")
            if push and (oms_changed or not pull):
                adapter.rename_manufacturer(ext, row.name)
                report.add("renamed_in_store", f"{man.name!r} -> {row.name!r}")
                settle(ext, row)
            elif pull:
                report.add("renamed_in_oms", f"{row.name!r} -> {man.name!r}")
                row.name = man.name
                settle(ext, row)
        by_name = {m.name.strip().casefold(): m for m in manufacturers.values()}
        bound_ext = set(pairs)
        if push:
            for row in rows.values():
                if row.id in bound_rows:
                    continue
                man = by_name.get(row.name.strip().casefold())
                if man is not None and man.id not in bound_ext:
                    report.add("matched", f"{row.name!r} = manufacturer {man.id}")
                else:
                    man = adapter.create_manufacturer(name=row.name)
                    manufacturers[man.id] = man
                    report.add("created_in_store", f"{row.name!r} (manufacturer {man.id})")
                bound_ext.add(man.id)
                settle(man.id, row)
        if pull:
            for man in manufacturers.values():
                if man.id in bound_ext:
                    continue
                row = next((r for r in rows.values() if r.name == man.name), None)
                if row is None or row.id in bound_rows:
                    row = BrandRow(name=man.name)
                    session.add(row)
                    session.flush()
                    rows[row.id] = row
                    report.add("created_in_oms", f"{man.name!r}")
                else:
                    report.add("matched", f"{row.name!r} = manufacturer {man.id}")
                bound_ext.add(man.id)
                settle(man.id, row)
    return report


__all__ = ["BrandSyncReport", "Direction", "sync_brands"]
