"""The shop's clock: store date texts (local to PS_TIMEZONE) <-> UTC, east and west of UTC,
across summer-time changes (the autumn hour that happens twice, the spring hour that does
not happen), and date cursors that never skip an edit. Pure: no store, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.runtime.channels.prestashop.shop import (
    ShopClock,
    ShopFacts,
    clock_for,
    next_cursor,
    pick_configuration,
    shift_text,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --------------------------------------------------------------------------- conversion


@pytest.mark.parametrize(
    ("zone", "local", "expected"),
    [
        ("Asia/Tokyo", "2024-05-01 09:00:00", utc(2024, 5, 1, 0, 0, 0)),  # east, +9
        ("Asia/Kolkata", "2024-05-01 05:30:00", utc(2024, 5, 1, 0, 0, 0)),  # east, +5:30
        ("America/Los_Angeles", "2024-01-15 04:00:00", utc(2024, 1, 15, 12, 0, 0)),  # west, -8
        ("America/Los_Angeles", "2024-07-15 05:00:00", utc(2024, 7, 15, 12, 0, 0)),  # -7 (DST)
        ("Europe/Paris", "2024-01-10 10:12:08", utc(2024, 1, 10, 9, 12, 8)),  # winter +1
        ("Europe/Paris", "2024-07-10 10:12:08", utc(2024, 7, 10, 8, 12, 8)),  # summer +2
        ("Pacific/Kiritimati", "2024-03-01 14:00:00", utc(2024, 3, 1, 0, 0, 0)),  # +14
        ("UTC", "2024-03-01 14:00:00", utc(2024, 3, 1, 14, 0, 0)),
    ],
)
def test_a_store_date_is_read_in_the_shops_zone(zone: str, local: str, expected: datetime) -> None:
    clock = ShopClock(zone)
    assert clock.to_utc(local) == expected
    assert clock.to_local(expected) == local
    assert clock.utc_text(local) == expected.isoformat()


def test_zero_dates_and_empty_texts_are_none() -> None:
    clock = ShopClock("Europe/Paris")
    assert clock.to_utc("0000-00-00 00:00:00") is None
    assert clock.to_utc("") is None
    assert clock.to_utc(None) is None


def test_the_repeated_autumn_hour_reads_as_its_earlier_instant() -> None:
    # 2024-10-27 in Paris: 03:00 CEST goes back to 02:00 CET, so 02:30 happens twice
    clock = ShopClock("Europe/Paris")
    first = utc(2024, 10, 27, 0, 30)  # 02:30 CEST
    second = utc(2024, 10, 27, 1, 30)  # 02:30 CET, an hour later
    assert clock.to_local(first) == clock.to_local(second) == "2024-10-27 02:30:00"
    assert clock.to_utc("2024-10-27 02:30:00") == first
    assert {clock.to_utc("2024-10-27 02:30:00") for _ in range(5)} == {first}  # deterministic


def test_the_skipped_spring_hour_is_read_deterministically() -> None:
    # 2024-03-31 in Paris: 02:00 CET jumps to 03:00 CEST; PrestaShop never writes 02:30,
    # but SQL can: it is read with the offset before the change
    clock = ShopClock("Europe/Paris")
    assert clock.to_utc("2024-03-31 02:30:00") == utc(2024, 3, 31, 1, 30)


def test_utc_fields_converts_only_date_texts() -> None:
    clock = ShopClock("Asia/Tokyo")
    record = {
        "date_add": "2024-05-01 09:00:00",
        "date_upd": "0000-00-00 00:00:00",
        "reference": "2024-05-01 09:00:00 is not a date field",
        "total_paid": "10.000000",
        "id": 5,
    }
    out = clock.utc_fields(record, ["date_add", "date_upd", "total_paid"])
    assert out["date_add"] == "2024-05-01T00:00:00+00:00"
    assert out["date_upd"] is None
    assert out["total_paid"] == "10.000000"
    assert out["reference"] == record["reference"]
    assert clock.utc_fields(record)["reference"] == record["reference"]  # not a date text


def test_backward_jump_is_the_repeated_span() -> None:
    assert ShopClock("Europe/Paris").backward_jump == timedelta(hours=1)
    assert ShopClock("America/New_York").backward_jump == timedelta(hours=1)
    assert ShopClock("Australia/Lord_Howe").backward_jump == timedelta(minutes=30)
    assert ShopClock("Asia/Tokyo").backward_jump == timedelta(0)
    assert ShopClock("UTC").backward_jump == timedelta(0)


def test_unknown_or_missing_zone_falls_back_to_utc_with_a_warning() -> None:
    clock, warning = clock_for("Mars/Olympus_Mons")
    assert clock.is_utc
    assert warning is not None
    assert "PS_TIMEZONE" in warning
    assert "fix:" in warning
    clock, warning = clock_for("")
    assert clock.is_utc
    assert warning
    clock, warning = clock_for("Europe/Paris")
    assert clock.name == "Europe/Paris"
    assert warning is None


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(["Europe/Paris", "America/Los_Angeles", "Asia/Tokyo", "Asia/Kolkata"]),
    moment=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1)),
)
def test_reading_back_a_written_date_gives_the_instant_or_its_earlier_twin(
    zone: str, moment: datetime
) -> None:
    clock = ShopClock(zone)
    instant = moment.replace(microsecond=0, tzinfo=UTC)
    back = clock.to_utc(clock.to_local(instant))
    assert back is not None
    # the same instant, or (inside the repeated autumn hour) the earlier one of the two
    assert back == instant or instant - back == clock.backward_jump
    assert clock.to_local(back) == clock.to_local(instant)


# --------------------------------------------------------------------------- cursors


CHANGES = {
    "Europe/Paris": [utc(2024, 10, 27, 1), utc(2024, 3, 31, 1)],
    "America/New_York": [utc(2024, 11, 3, 6), utc(2024, 3, 10, 7)],
    "Asia/Tokyo": [utc(2024, 6, 1, 0)],
}


@st.composite
def _story(draw: st.DrawFn) -> tuple[str, list[datetime], list[datetime], int, timedelta]:
    zone = draw(st.sampled_from(sorted(CHANGES)))
    change = draw(st.sampled_from(CHANGES[zone]))
    seconds = st.integers(min_value=-3 * 3600, max_value=3 * 3600)
    edits = sorted({change + timedelta(seconds=s) for s in draw(st.lists(seconds, max_size=25))})
    runs = sorted({change + timedelta(seconds=s) for s in draw(st.lists(seconds, max_size=12))})
    runs.append(change + timedelta(hours=4))  # a last run after everything
    read_delay = draw(st.integers(min_value=0, max_value=300))
    overlap = draw(st.sampled_from([timedelta(seconds=1), timedelta(hours=1)]))
    return zone, edits, runs, read_delay, overlap


@settings(max_examples=400, deadline=None)
@given(story=_story())
@pytest.mark.slow
def test_a_date_cursor_never_skips_an_edit_around_a_change_of_clocks(
    story: tuple[str, list[datetime], list[datetime], int, timedelta],
) -> None:
    """Edits are written with the shop's local text of their instant; each run starts at
    its instant (its store-local ``started`` text), reads what exists ``read_delay`` seconds
    later with ``date_upd > cursor`` (texts compared as texts, as the store's SQL does), and
    moves the cursor. Every edit made before the last run is read by some run after it."""
    zone, edits, runs, read_delay, overlap = story
    clock = ShopClock(zone)
    cursor: str | None = clock.to_local(runs[0] - timedelta(days=1))
    seen: set[datetime] = set()
    for start in runs:
        read_at = start + timedelta(seconds=read_delay)
        page = [e for e in edits if e <= read_at and clock.to_local(e) > (cursor or "")]
        seen.update(page)
        max_seen = max((clock.to_local(e) for e in page), default="")
        cursor = next_cursor(
            clock,
            started=clock.to_local(start),
            max_seen=max_seen,
            previous=cursor,
            overlap=overlap,
        )
    assert set(edits) <= seen


def test_without_the_repeated_hour_the_cursor_would_skip_an_autumn_edit() -> None:
    # the case the backward step exists for: the run starts at 02:59:30 CEST and sees an
    # edit of that second; an edit 40 minutes later is written 02:39:30 (CET), a text
    # BEFORE the one seen
    clock = ShopClock("Europe/Paris")
    start = utc(2024, 10, 27, 0, 59, 30)
    later_edit = clock.to_local(start + timedelta(minutes=40))
    assert later_edit == "2024-10-27 02:39:30"
    one_second = timedelta(seconds=1)
    cursor = next_cursor(
        clock, started=clock.to_local(start), max_seen="2024-10-27 02:59:30", previous=None,
        overlap=one_second,
    )  # fmt: skip
    assert cursor is not None
    assert later_edit > cursor
    naive = shift_text("2024-10-27 02:59:30", -one_second)
    assert not later_edit > naive  # what a cursor that ignores the change would miss


def test_the_cursor_never_moves_back_and_stays_when_nothing_is_known() -> None:
    clock = ShopClock("Europe/Paris")
    assert next_cursor(clock, started=None, max_seen="", previous="x", overlap=timedelta(0)) == "x"
    assert (
        next_cursor(
            clock,
            started="2024-01-01 10:00:00",
            max_seen="2024-01-01 09:00:00",
            previous="2024-01-01 09:30:00",
            overlap=timedelta(hours=1),
        )
        == "2024-01-01 09:30:00"
    )


# --------------------------------------------------------------------------- facts


def test_configuration_rows_pick_what_prestashop_uses_for_the_default_shop() -> None:
    rows = [
        {"name": "PS_TIMEZONE", "value": "Europe/Paris", "id_shop": "", "id_shop_group": ""},
        {"name": "PS_TIMEZONE", "value": "Asia/Tokyo", "id_shop": "1", "id_shop_group": "1"},
        {"name": "PS_TIMEZONE", "value": "America/Lima", "id_shop": "2", "id_shop_group": "1"},
        {"name": "PS_LANG_DEFAULT", "value": "2", "id_shop": "", "id_shop_group": "1"},
        {"name": "PS_LANG_DEFAULT", "value": "1", "id_shop": "", "id_shop_group": ""},
        {"name": "PS_OS_PAYMENT", "value": "2", "id_shop": "", "id_shop_group": ""},
    ]
    picked = pick_configuration(rows)
    assert picked == {"PS_TIMEZONE": "Asia/Tokyo", "PS_LANG_DEFAULT": "2", "PS_OS_PAYMENT": "2"}
    rows.append({"name": "PS_SHOP_DEFAULT", "value": "2", "id_shop": "", "id_shop_group": ""})
    assert pick_configuration(rows)["PS_TIMEZONE"] == "America/Lima"
    assert pick_configuration(rows[:1])["PS_TIMEZONE"] == "Europe/Paris"


def test_facts_round_trip_through_json_and_know_their_version() -> None:
    facts = ShopFacts.from_json(
        {
            "timezone": "Europe/Paris",
            "languages": [
                {"id": 1, "iso_code": "en", "active": True},
                {"id": 2, "iso_code": "fr", "active": True},
            ],
            "default_language_id": 2,
            "version": "8.2.1",
            "shop": {"name": "RealPS"},
            "state_keys": {"PS_OS_PAYMENT": 2},
        }
    )
    assert ShopFacts.from_json(facts.to_json()) == facts
    assert facts.language_ids == (2, 1)  # the default language first
    assert facts.clock == ShopClock("Europe/Paris")
    assert facts.major_version == 8
    assert ShopFacts(version="1.7.8.11").major_version == 7
    assert ShopFacts(version="1.6.1.24").major_version == 6
    assert ShopFacts().major_version is None
    assert ShopFacts.from_json({}).clock.is_utc
    assert ZoneInfo("Europe/Paris")  # the machine has the zone database the clock needs
