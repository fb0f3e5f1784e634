"""The property of issue 11 over the shipped channel spec: renaming, dropping, retyping or
duplicating any mapping entry either still validates AND imports the same orders and
products from the sandbox (over HTTP, into a fresh database), or fails validation with
located errors. Never a silent empty field.

Entries are those the OMS model types: ``direct`` and ``children`` of every mapping, inbound
and outbound (an outbound change that validates leaves the import alone by construction).
``extra:`` entries are the integrator's own free fields: renaming or dropping one changes
what is kept, on purpose, so they are not mutated here. Renames are typos (a name no model,
store resource or mapping has); a rename to another real field is a different mapping, not a
mistake.
"""

from __future__ import annotations

import copy
import re
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.core import TRANSFORMS
from engine.errors import SpecError, SpecErrors
from engine.runtime.channels.prestashop import resources
from engine.runtime.channels.prestashop.adapter import PrestaShopAdapter
from engine.runtime.channels.prestashop.connect import state_names
from engine.runtime.db import session as dbsession
from engine.runtime.db import stores
from engine.runtime.db.base import Base
from engine.runtime.db.tables import (
    LINE_FACTS,
    BindingRow,
    BrandRow,
    InventoryRow,
    OrderRow,
    ProductRow,
)
from engine.runtime.specs import load_bundle
from engine.runtime.sync import sync_catalog, sync_orders
from engine.spec.oms import oms_model
from engine.spec.source import load_text
from sandbox.server import SandboxServer, start_sandbox
from tests.spec.helpers import CHANNEL_TEXT, REPO

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CHANNEL = load_text(CHANNEL_TEXT, "c").data
LINE = re.compile(r"^[^:]+\.yaml:\d+:\d+: .+ \(at \$[^)]*\).* \[spec\.[a-z-]+\]$")
ENTRIES = [
    (name, section, i)
    for name, body in CHANNEL["mappings"].items()
    for section in ("direct", "children")
    for i in range(len(body.get(section) or []))
]
KNOWN = (
    {f for r in oms_model().records.values() for f in r.fields}
    | set(oms_model().records)
    | set(oms_model().roles)
    | {
        name
        for res in resources.bundled().resources.values()
        for sub in (res, *res.associations.values())
        for name in (*sub.fields, *sub.associations)
    }
)


def _typos(word: str) -> list[str]:
    return [
        t
        for t in (word + "x", word[:-1], word.upper(), word + "_id", f"{word}s")
        if t and t not in KNOWN and t != word
    ]


@st.composite
def mutations(draw: st.DrawFn) -> tuple[str, tuple[str, str, int], dict[str, Any]]:
    data = copy.deepcopy(CHANNEL)
    name, section, i = draw(st.sampled_from(ENTRIES))
    items = data["mappings"][name][section]
    entry = items[i]
    kind = draw(
        st.sampled_from(
            ["rename_to", "rename_from", "drop", "retype", "duplicate", "rename_mapping"]
        )
    )
    if kind == "rename_to":
        entry["to"] = draw(st.sampled_from(_typos(entry["to"])))
    elif kind == "rename_from":
        entry["from"] = draw(st.sampled_from(_typos(entry["from"])))
    elif kind == "drop":
        items.pop(i)
    elif kind == "duplicate":
        items.insert(i + 1, copy.deepcopy(entry))
    elif kind == "rename_mapping":
        if section == "children":
            entry["mapping"] = draw(st.sampled_from(_typos(entry["mapping"])))
        else:
            body = data["mappings"].pop(name)
            data["mappings"][draw(st.sampled_from(_typos(name)))] = body
    elif section == "children":  # retype a child entry: its target as a number
        entry["to"] = 7
    else:  # retype: another transform, none, or a target that is not even a name
        choice = draw(st.sampled_from([None, 7, *sorted(TRANSFORMS)]))
        if choice is None:
            entry.pop("transform", None)
        elif choice == 7:
            entry["to"] = 7
        else:
            entry["transform"] = choice
    return kind, (name, section, i), data


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with start_sandbox(products=8, orders=24, seed=11, now=NOW) as server:
        yield server


def _dump(sessions: sessionmaker[Session]) -> dict[str, Any]:
    """Everything an import writes that a mapping decides, by natural keys."""
    with sessions() as s:
        sku_of = dict(s.execute(select(ProductRow.id, ProductRow.sku)).all())
        brand = dict(s.execute(select(BrandRow.id, BrandRow.name)).all())
        return {
            "products": sorted(
                (
                    p.sku,
                    p.name,
                    sku_of.get(p.parent_id) if p.parent_id else None,
                    str(p.price),
                    p.active,
                    brand.get(p.brand_id) if p.brand_id else None,
                    repr(sorted((p.extra or {}).items())),
                    repr(sorted(p.store_ids.items())),
                )
                for p in s.scalars(select(ProductRow))
            ),
            "bindings": sorted((b.kind, b.external_id) for b in s.scalars(select(BindingRow))),
            "inventory": sorted(
                (i.sku, i.on_hand, i.reserved) for i in s.scalars(select(InventoryRow))
            ),
            "orders": sorted(
                (
                    o.external_id,
                    o.reference,
                    o.state,
                    o.ordered_at.isoformat(),
                    o.channel_updated_at.isoformat() if o.channel_updated_at else None,
                    str(o.total_paid),
                    str(o.total_products),
                    str(o.total_shipping),
                    o.payment,
                    repr(sorted((o.extra or {}).items())),
                    tuple(
                        (
                            li.sku,
                            li.name,
                            li.quantity,
                            li.reserved,
                            str(li.unit_price),
                            li.external_id,
                            # the line's optional model fields (weight, tax rate, EAN-13)
                            # share its JSON but, like the order's carrier, currency and
                            # addresses, are not dumped: dropping one is allowed
                            repr(
                                sorted(
                                    (k, v)
                                    for k, v in (li.extra or {}).items()
                                    if k not in LINE_FACTS
                                )
                            ),
                        )
                        for li in o.lines
                    ),
                )
                for o in s.scalars(select(OrderRow))
            ),
        }


def _import(channels_dir: Path, sandbox: SandboxServer) -> dict[str, Any]:
    """Validate the channel in ``channels_dir`` (SpecErrors if it is not valid), then sync
    the sandbox's catalogue and orders with it into a fresh database."""
    bundle = load_bundle(specs_dir=REPO / "specs", channels_dir=channels_dir)
    engine = dbsession.make_engine(f"sqlite:///{channels_dir / 'omsflow.db'}")
    try:
        Base.metadata.create_all(engine)
        sessions = dbsession.session_factory(engine)
        with PrestaShopAdapter.from_channel(sandbox.url, sandbox.key, bundle.channel) as a:
            ids, _missing = a.resolve_states(state_names(bundle.channel))
        with sessions.begin() as s:
            stores.save_store(s, "main", sandbox.url, sandbox.key, ids)
        with PrestaShopAdapter.from_channel(sandbox.url, sandbox.key, bundle.channel) as a:
            a.page_size = 10
            sync_catalog(sessions, bundle, "main", adapter=a)
            sync_orders(sessions, bundle, "main", adapter=a, now=NOW)
        return _dump(sessions)
    finally:
        engine.dispose()


def _outcome(
    folder: Path, sandbox: SandboxServer
) -> tuple[list[SpecError] | None, dict[str, Any] | None]:
    """(the located problems, None) or (None, what the import wrote)."""
    try:
        return None, _import(folder, sandbox)
    except SpecErrors as exc:
        return exc.errors, None


def _write(folder: Path, data: dict[str, Any]) -> Path:
    (folder / "prestashop.yaml").write_text(
        yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
    return folder / "prestashop.yaml"


_BASE: dict[str, Any] = {}


def baseline(sandbox: SandboxServer) -> dict[str, Any]:
    if "dump" not in _BASE:
        with tempfile.TemporaryDirectory() as tmp:
            _write(Path(tmp), copy.deepcopy(CHANNEL))
            _BASE["dump"] = _import(Path(tmp), sandbox)
    return _BASE["dump"]


def test_the_unmutated_spec_round_trips_and_imports(sandbox: SandboxServer) -> None:
    dump = baseline(sandbox)
    assert dump["orders"], "the sandbox window holds no imported order"
    assert any(o[9] != "[]" for o in dump["orders"])  # extra fields are kept
    assert all(line[1] for o in dump["orders"] for line in o[10])  # every line has a name


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(mutation=mutations())
@pytest.mark.slow
def test_a_mutated_mapping_validates_and_imports_the_same_or_fails_located(
    sandbox: SandboxServer, mutation: tuple[str, tuple[str, str, int], dict[str, Any]]
) -> None:
    kind, (name, _section, _i), data = mutation
    expected = baseline(sandbox)
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), data)
        refused, got = _outcome(Path(tmp), sandbox)
    if refused is not None:
        event(f"{kind}: refused")
        assert refused
        for err in refused:
            assert LINE.match(err.line()), err.line()
            assert err.location.file == str(path)
            assert err.location.line >= 1
        assert any(e.location.json_path.startswith(("$.mappings", "$.skus")) for e in refused), [
            e.line() for e in refused
        ]
        return
    event(f"{kind}: accepted")
    assert got == expected, f"{kind} of {name} validated but imported something else"
