"""The deploy check's other findings and the effect migrations, on the rows themselves."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.runtime import service, specdeploy
from engine.runtime.db import session as dbsession
from engine.runtime.db.tables import OutboxRow, StoreRow
from engine.runtime.inventory import set_on_hand
from engine.runtime.service import NewLine, NewOrder
from engine.runtime.specs import load_bundle

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def sessions(db_url: str):  # type: ignore[no-untyped-def]
    dbsession.ensure_schema(db_url)
    engine = dbsession.make_engine(db_url)
    yield dbsession.session_factory(engine)
    engine.dispose()


def _copy(folder: Path, replace: tuple[str, str] | None = None, extra: str = "") -> None:
    for kind, name in (("specs", "order_lifecycle.yaml"), ("channels", "prestashop.yaml")):
        (folder / kind).mkdir(exist_ok=True)
        text = (REPO / kind / name).read_text(encoding="utf-8")
        if replace is not None and kind == "specs":
            text = text.replace(*replace)
        if kind == "specs" and extra:
            text += "\nmigrations:\n" + extra
        (folder / kind / name).write_text(text, encoding="utf-8")


def _released(sessions, ref: str, store_id: int | None = None) -> None:  # type: ignore[no-untyped-def]
    bundle = load_bundle(REPO / "specs", REPO / "channels")
    with sessions.begin() as s:
        set_on_hand(s, "SKU-1", 5, at=T0)
    order = NewOrder(reference=ref, ordered_at=T0, lines=[NewLine("SKU-1", 1)], store_id=store_id)
    service.create_order(sessions, bundle, order, idempotency_key=f"t:{ref}", at=T0)
    service.apply_inbound(
        sessions,
        bundle,
        reference=ref,
        trigger="release",
        source="user",
        idempotency_key=f"r:{ref}",
        at=T0,
    )


def test_a_store_status_the_store_does_not_have_is_named(sessions, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    status_map = load_bundle(REPO / "specs", REPO / "channels").channel.status_map
    named = {v for v in status_map.outbound.values() if v} | set(status_map.inbound)
    resolved = {
        name: i for i, name in enumerate(sorted(named)) if name != "Processing in progress"
    }
    with sessions.begin() as s:
        s.add(
            StoreRow(
                name="shop",
                url="http://shop.test",
                api_key="sealed",
                state_ids=resolved,
            )
        )
    with sessions() as s:
        store_id = s.scalars(select(StoreRow.id)).one()
    _released(sessions, "S1", store_id)
    _copy(tmp_path)
    bundle = load_bundle(tmp_path / "specs", tmp_path / "channels")
    with sessions() as s:
        problems = specdeploy.check(s, bundle)
    unresolved = [p for p in problems if p.error.code == "deploy.status-unresolved"]
    assert len(unresolved) == 1
    assert "store 'shop' has no status 'Processing in progress'" in unresolved[0].error.message
    assert unresolved[0].error.location.file.endswith("channels/prestashop.yaml")
    assert unresolved[0].error.location.json_path == "$.status_map.outbound.RFP"
    assert unresolved[0].orders == ("S1",)


@pytest.mark.slow
def test_a_renamed_effect_strands_then_migrates_its_queued_rows(sessions, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _released(sessions, "E2")
    _copy(tmp_path, ("notify_wms", "tell_wms"))
    # tell_wms is no effect of the vocabulary: validation refuses the edited spec
    with pytest.raises(Exception):  # noqa: B017 - SpecErrors, checked elsewhere
        load_bundle(tmp_path / "specs", tmp_path / "channels")
    # push_status's queued row is stranded by a spec that pushes the status no more
    (tmp_path / "specs" / "order_lifecycle.yaml").write_text(
        (REPO / "specs" / "order_lifecycle.yaml")
        .read_text(encoding="utf-8")
        .replace("push_status", "notify_wms")
        + "\nmigrations:\n  - rename_effect: {push_status: notify_wms}\n",
        encoding="utf-8",
    )
    bundle = load_bundle(tmp_path / "specs", tmp_path / "channels")
    with sessions() as s:
        (pending,) = specdeploy.check(s, bundle)
    assert pending.error.code == "deploy.migration-pending"
    assert pending.orders == ("E2",)
    report = specdeploy.migrate(sessions, bundle, at=T0)
    assert report.effects == [{"from": "push_status", "to": "notify_wms", "count": 1}]
    with sessions() as s:
        assert specdeploy.check(s, bundle) == []
        kinds = s.scalars(select(OutboxRow.kind)).all()
    assert kinds == ["notify_wms"]
    assert specdeploy.migrate(sessions, bundle, at=T0).effects[0]["count"] == 0


def test_workers_started_together_record_one_spec_version(db_url: str) -> None:
    """`omsflow run` workers started at once all record the same spec version: none may fail
    on the others' insert (seen: the third of three workers died on pk_spec_versions)."""
    import threading

    from sqlalchemy import func
    from sqlalchemy.orm import sessionmaker

    from engine.runtime.db.tables import SpecVersionRow

    dbsession.ensure_schema(db_url)
    bundle = load_bundle()
    engines = [dbsession.make_engine(db_url) for _ in range(6)]
    barrier = threading.Barrier(len(engines))
    errors: list[BaseException] = []

    def record(engine) -> None:  # type: ignore[no-untyped-def]
        factory = sessionmaker(engine)
        barrier.wait()
        try:
            specdeploy._recorded.clear()  # each thread plays a fresh process
            specdeploy.record_version(factory, bundle, at=datetime.now(UTC))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    try:
        threads = [threading.Thread(target=record, args=(e,)) for e in engines]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        with engines[0].connect() as conn:
            assert conn.scalar(select(func.count()).select_from(SpecVersionRow)) == 1
    finally:
        for e in engines:
            e.dispose()
