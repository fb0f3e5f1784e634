"""The 4x6 label PDF: opens, one 288x432 pt page, and its barcode decodes to the tracking id."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pypdf import PdfReader
from reportlab.graphics.barcode import code128 as rl_code128

from engine.errors import ConfigError
from engine.runtime.fulfilment.awb import allocate_numbers
from engine.runtime.fulfilment.label import (
    Parcel,
    ShipFrom,
    ShipTo,
    barcode_box,
    issue_shipment,
    issue_shipment_for,
    render_label,
    write_label,
)
from engine.spec.model import FulfilmentSpec, LabelSpec
from tests.runtime.fulfilment.code128 import PATTERNS, STOP, decode_modules, read_code128


def test_the_reader_table_is_code128() -> None:
    # Structural facts of the symbology: 11 modules per symbol, bar modules even, all distinct.
    assert len(PATTERNS) == 106
    assert len(set(PATTERNS)) == 106
    for p in PATTERNS:
        assert sum(map(int, p)) == 11
        assert (int(p[0]) + int(p[2]) + int(p[4])) % 2 == 0
    assert sum(map(int, STOP)) == 13
    # And it agrees with reportlab's independently written table.
    for value, pattern in rl_code128._patterns.items():
        widths = "".join(str(ord(ch.upper()) - ord("A") + 1) for ch in pattern)
        expected = STOP if value == 106 else PATTERNS[value]
        assert widths == expected, value


def test_the_reader_rejects_a_bad_checksum() -> None:
    # START B, 'A' (33), check should be (104 + 33) % 103 = 34; write 35 instead.
    modules = PATTERNS[104] + PATTERNS[33] + PATTERNS[35] + STOP
    with pytest.raises(AssertionError, match="checksum"):
        decode_modules(modules)
    assert decode_modules(PATTERNS[104] + PATTERNS[33] + PATTERNS[34] + STOP) == "A"


def test_label_is_one_4x6_page_whose_barcode_encodes_the_tracking_id(tmp_path: Path) -> None:
    shipment = issue_shipment(
        tmp_path / "labels",
        prefix="OMS",
        order_id=42,
        key="outbox:9",
        order_reference="XKBKNABJK",
        ship_to=ShipTo("Zoë Müller", ("16, Main street", "75002 Paris", "France")),
    )
    assert shipment.label_path is not None
    assert shipment.label_path.name == f"label-{shipment.tracking_id}.pdf"
    reader = PdfReader(shipment.label_path)
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert (float(box.left), float(box.bottom), float(box.width), float(box.height)) == (
        0.0,
        0.0,
        288.0,
        432.0,
    )
    assert read_code128(str(shipment.label_path)) == shipment.tracking_id
    text = reader.pages[0].extract_text()
    for expected in (
        shipment.awb,
        shipment.tracking_id,
        "XKBKNABJK",
        "Self ship",
        "Zoë Müller",
        "75002 Paris",
    ):
        assert expected in text


@settings(max_examples=15)
@given(st.integers(min_value=0, max_value=10**10 - 1), st.text(min_size=1, max_size=20))
def test_barcode_decodes_for_any_order(
    tmp_path_factory: pytest.TempPathFactory, order_id: int, key: str
) -> None:
    folder = tmp_path_factory.mktemp("labels")
    n = allocate_numbers("OMS", order_id, key)
    path = write_label(folder, awb=n.awb, tracking_id=n.tracking_id, order_reference="REF")
    assert read_code128(str(path)) == n.tracking_id


def test_odd_tracking_ids_still_decode(tmp_path: Path) -> None:
    # Mixed code sets (B -> C -> B) and punctuation PrestaShop accepts.
    for tracking in ("AB-1234567-x/9", "1Z999AA10123456784", "7"):
        path = write_label(tmp_path, awb="OMS1", tracking_id=tracking, order_reference="R")
        assert read_code128(str(path)) == tracking


def test_a_retry_rewrites_the_same_bytes_atomically(tmp_path: Path) -> None:
    a = issue_shipment(tmp_path, prefix="OMS", order_id=7, key="k", order_reference="R1")
    assert a.label_path is not None
    first = a.label_path.read_bytes()
    b = issue_shipment(tmp_path, prefix="OMS", order_id=7, key="k", order_reference="R1")
    assert b == a
    assert a.label_path.read_bytes() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == [a.label_path.name]  # no temp files


def test_label_without_address_and_long_fields(tmp_path: Path) -> None:
    data = render_label(
        awb="OMS1", tracking_id="OMST1", order_reference="R" * 300, carrier_name="Self ship"
    )
    path = tmp_path / "x.pdf"
    path.write_bytes(data)
    assert "(address on the order)" in PdfReader(path).pages[0].extract_text()


def test_other_barcodes_and_sizes(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="barcode"):
        render_label(awb="A1", tracking_id="T1", order_reference="R", barcode="qr")
    path = write_label(
        tmp_path, awb="A1", tracking_id="T12345", order_reference="R", width_in=4, height_in=4
    )
    assert float(PdfReader(path).pages[0].mediabox.height) == 288.0
    assert read_code128(str(path)) == "T12345"


def test_issue_shipment_from_the_channel_spec(tmp_path: Path) -> None:
    spec = FulfilmentSpec(
        carrier_name="Own fleet",
        awb_prefix="ACME",
        label=LabelSpec(width_in=4, height_in=6, barcode="code128"),
    )
    shipment = issue_shipment_for(spec, tmp_path, order_id=5, key="k", order_reference="R")
    assert shipment.awb.startswith("ACME")
    assert shipment.carrier_name == "Own fleet"
    assert shipment.label_path is not None
    assert "Own fleet" in PdfReader(shipment.label_path).pages[0].extract_text()


# ------------------------------------------------ issue 12: a label a carrier takes

WHOLE = {
    "awb": "OMS2000000017",
    "tracking_id": "OMS20000000174",
    "order_reference": "XKBKNABJK",
    "ship_to": ShipTo(
        "Дмитрий Иванов",
        ("ООО Ромашка", "ул. Тверская, д. 7", "кв. 12", "101000 Москва", "Москва", "Россия"),
        phone="+7 495 123-45-67",
    ),
    "ship_from": ShipFrom("Zoë's Ørsted Shop", ("3 rue de l'Église", "75002 Paris", "France")),
    "parcel": Parcel(items=3, weight_kg=Decimal("1.250"), service="Γρήγορη αποστολή"),
}


def _render(tmp_path: Path, **kw: object) -> Path:
    path = tmp_path / "label.pdf"
    path.write_bytes(render_label(**{**WHOLE, **kw}))  # type: ignore[arg-type]
    return path


def test_the_whole_label_prints_every_block_in_its_own_alphabet(tmp_path: Path) -> None:
    path = _render(tmp_path)
    text = PdfReader(path).pages[0].extract_text()
    for expected in (
        "Дмитрий Иванов",
        "ООО Ромашка",
        "ул. Тверская, д. 7",
        "101000 Москва",
        "Россия",
        "+7 495 123-45-67",
        "Zoë's Ørsted Shop",
        "3 rue de l'Église",
        "Γρήγορη αποστολή",
        "Order XKBKNABJK",
        "3 items",
        "1.25 kg",
        "OMS2000000017",
        "OMS20000000174",
    ):
        assert expected in text, expected
    assert read_code128(str(path)) == "OMS20000000174"
    # the font is embedded (a subset of a TrueType file), not a viewer's substitute
    fonts = PdfReader(path).pages[0]["/Resources"]["/Font"]
    embedded = [f.get_object() for f in fonts.values()]
    assert all(f["/Subtype"] in ("/TrueType", "/Type0") for f in embedded)
    assert all("/FontFile2" in _descriptor(f) for f in embedded)


def _descriptor(font: object) -> dict[str, object]:
    f: Any = font
    if "/DescendantFonts" in f:
        f = f["/DescendantFonts"][0].get_object()
    return dict(f["/FontDescriptor"].get_object())


def test_a_retry_of_the_whole_label_gives_the_same_bytes(tmp_path: Path) -> None:
    assert _render(tmp_path).read_bytes() == render_label(**WHOLE)  # type: ignore[arg-type]


@pytest.mark.parametrize("tracking", ["OMS20000000174", "Z9", "AB-1234567-x/9gjpqy"])
def test_rendered_no_text_enters_the_bars_or_their_quiet_zones(
    tmp_path: Path, tracking: str
) -> None:
    """Rendered with PDFium: every character's box lies outside the bars' box (quiet
    zones included), and inside that box every pixel column is one colour top to bottom
    (bars and gaps only: a glyph would break a column)."""
    path = _render(tmp_path, tracking_id=tracking)
    x0, y0, x1, y1 = barcode_box(tracking)
    pdf = pdfium.PdfDocument(str(path))
    try:
        page = pdf[0]
        chars = page.get_textpage()
        for i in range(chars.count_chars()):
            left, bottom, right, top = chars.get_charbox(i)
            if right <= left or top <= bottom:
                continue  # spaces
            overlaps = left < x1 and right > x0 and bottom < y1 and top > y0
            assert not overlaps, (chars.get_text_range(i, 1), (left, bottom, right, top))
        scale = 4
        image = page.render(scale=scale, grayscale=True).to_pil().convert("L")
    finally:
        pdf.close()
    height = image.height
    rows = range(int((432 - y1) * scale) + 2, int((432 - y0) * scale) - 2)
    for x in range(int(x0 * scale) + 1, int(x1 * scale) - 1):
        column = {image.getpixel((x, y)) < 128 for y in rows}
        assert len(column) == 1, f"column {x / scale:.1f} pt is not one colour"
    quiet = range(int(x0 * scale) + 1, int((x0 + 7) * scale))
    assert all(image.getpixel((x, rows[0])) >= 128 for x in quiet)  # the left quiet zone
    assert height == 432 * scale
    assert read_code128(str(path)) == tracking
