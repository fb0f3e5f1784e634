"""The shipping label: a one-page 4x6 inch PDF with a Code 128 barcode of the tracking id.

Rendered with reportlab in invariant mode (no creation date, fixed document id), so the
same shipment always gives byte-identical PDFs and a retried effect rewrites the same
file. Files are written atomically: a temporary file in the target folder, fsync, then
``os.replace``; a reader never sees half a label.
"""

from __future__ import annotations

import functools
import io
import os
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path

from reportlab.graphics.barcode.code128 import Code128
from reportlab.lib.units import inch
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from engine.errors import ConfigError
from engine.runtime.fulfilment.awb import Shipment, allocate_numbers
from engine.spec.model import FulfilmentSpec

__all__ = [
    "Parcel",
    "ShipFrom",
    "ShipTo",
    "barcode_box",
    "issue_shipment",
    "issue_shipment_for",
    "label_filename",
    "render_label",
    "write_label",
]

_MARGIN = 14.0
_BAR_HEIGHT = 72.0
_MAX_MODULE = 1.6  # pt; wider bars only waste label width
_MIN_MODULE = 0.7  # pt; ~2 dots on a 203 dpi thermal printer: narrower will not scan
_QUIET_MODULES = 10
_TEXT_GAP = 5.0
"""Points between the bars' bottom and the top of the human-readable text below them."""

FONT = "OmsLabelSans"
FONT_BOLD = "OmsLabelSans-Bold"


@functools.cache
def _fonts() -> tuple[str, str]:
    """Register the label's TrueType font (Fira Sans, from the ``fontpkg-fira-sans``
    package: Latin with accents, Greek, Cyrillic), embedded as a subset in each PDF."""
    files = resources.files("fontpkg_fira_sans") / "files"
    for name, file in ((FONT, "FiraSans-Regular.ttf"), (FONT_BOLD, "FiraSans-Bold.ttf")):
        with resources.as_file(files / file) as path:
            pdfmetrics.registerFont(TTFont(name, str(path)))
    return FONT, FONT_BOLD


@dataclass(frozen=True)
class ShipTo:
    """The consignee as printed on the label: a name, address lines (company, street,
    postcode and city, state, country) and a phone."""

    name: str
    lines: tuple[str, ...] = ()
    phone: str | None = None


@dataclass(frozen=True)
class ShipFrom:
    """The sender: the shop's name and address lines (``PS_SHOP_*``, or the channel spec)."""

    name: str
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class Parcel:
    """What the label says of the parcel: items, weight (kg), the order's carrier service."""

    items: int | None = None
    weight_kg: Decimal | None = None
    service: str | None = None


def label_filename(tracking_id: str) -> str:
    """The label's file name inside the labels folder (one file per tracking id)."""
    return f"label-{tracking_id}.pdf"


def _barcode(value: str, available_width: float) -> tuple[Code128, float]:
    probe = Code128(value, barWidth=1.0, barHeight=_BAR_HEIGHT, quiet=0)
    probe.validate()
    probe.encode()
    modules = len(probe.encoded) * 11 + 2  # every symbol is 11 modules; stop adds 2
    module = min(_MAX_MODULE, available_width / (modules + 2 * _QUIET_MODULES))
    if module < _MIN_MODULE:
        raise ValueError(f"tracking id {value!r} is too long for a scannable barcode on the label")
    code = Code128(value, barWidth=module, barHeight=_BAR_HEIGHT, quiet=0)
    code.validate()
    code.encode()
    return code, modules * module


def _fit(canvas: Canvas, text: str, font: str, size: float, width: float) -> str:
    if canvas.stringWidth(text, font, size) <= width:
        return text
    while text and canvas.stringWidth(text + "...", font, size) > width:
        text = text[:-1]
    return text + "..."


def barcode_box(
    tracking_id: str, *, width_in: float = 4.0, height_in: float = 6.0
) -> tuple[float, float, float, float]:
    """Where the bars are drawn, with their quiet zones: ``(x0, y0, x1, y1)`` in points
    from the bottom-left corner (no text may enter it)."""
    width = width_in * inch
    code, code_width = _barcode(tracking_id, width - 2 * _MARGIN)
    x0 = (width - code_width) / 2
    quiet = _QUIET_MODULES * float(code.barWidth)
    y0 = _bars_bottom()
    return (x0 - quiet, y0, x0 + code_width + quiet, y0 + _BAR_HEIGHT)


def _bars_bottom() -> float:
    # carrier line, then the tracking text (13 pt: descent ~3.5, cap height ~9.5), a gap
    return _MARGIN + 6 + 14 + 4 + 10 + _TEXT_GAP


def _kg(value: Decimal) -> str:
    text = f"{value.quantize(Decimal('0.001')):f}".rstrip("0").rstrip(".")
    return f"{text or '0'} kg"


def render_label(
    *,
    awb: str,
    tracking_id: str,
    order_reference: str,
    ship_to: ShipTo | None = None,
    carrier_name: str = "Self ship",
    width_in: float = 4.0,
    height_in: float = 6.0,
    barcode: str = "code128",
    ship_from: ShipFrom | None = None,
    parcel: Parcel | None = None,
) -> bytes:
    """The label PDF as bytes (deterministic for the same arguments)."""
    if barcode.lower() != "code128":
        raise ConfigError(
            f"fulfilment.label.barcode {barcode!r} is not supported (fix: barcode: code128)"
        )
    regular, bold = _fonts()
    parcel = parcel or Parcel()
    width, height = width_in * inch, height_in * inch
    inner = width - 2 * _MARGIN
    out = io.BytesIO()
    c = Canvas(out, pagesize=(width, height), invariant=1, initialFontName=regular)
    c.setTitle(f"Shipping label {tracking_id}")
    c.setAuthor("omsflow")
    c.setLineWidth(1.2)
    c.rect(_MARGIN / 2, _MARGIN / 2, width - _MARGIN, height - _MARGIN, stroke=1, fill=0)

    def text(x: float, y: float, value: str, font: str, size: float, room: float) -> None:
        c.setFont(font, size)
        c.drawString(x, y, _fit(c, value, font, size, room))

    # -- header: carrier and service, then the sender (small)
    y = height - _MARGIN - 14
    text(_MARGIN, y, carrier_name, bold, 14, inner * 0.6)
    if parcel.service:
        c.setFont(regular, 8)
        c.drawRightString(
            width - _MARGIN, y, _fit(c, f"Service: {parcel.service}", regular, 8, inner * 0.4)
        )
    y -= 11
    c.setFont(regular, 7)
    c.drawString(_MARGIN, y, "FROM")
    sender = ([ship_from.name, *ship_from.lines] if ship_from else [])[:4]
    for line in sender:
        text(_MARGIN + 26, y, line, regular, 7, inner - 26)
        y -= 8.5
    if not sender:
        y -= 8.5
    y -= 2
    c.setLineWidth(0.8)
    c.line(_MARGIN, y, width - _MARGIN, y)

    # -- the consignee
    y -= 13
    text(_MARGIN, y, "SHIP TO", bold, 9, inner)
    if ship_to is not None:
        y -= 16
        text(_MARGIN, y, ship_to.name, bold, 14, inner)
        for line in ship_to.lines[:6]:
            y -= 13.5
            text(_MARGIN, y, line, regular, 11.5, inner)
        if ship_to.phone:
            y -= 12.5
            text(_MARGIN, y, f"Tel. {ship_to.phone}", regular, 9.5, inner)
    else:
        y -= 15
        text(_MARGIN, y, "(address on the order)", regular, 10, inner)

    # -- bottom block, laid out upwards from the bottom margin: carrier line, tracking
    # text, the bars (text below them, clear of them), then AWB and the parcel's facts
    yb = _MARGIN + 6
    text(_MARGIN, yb, f"Carrier: {carrier_name}", regular, 8, inner)
    yb += 14 + 4  # the tracking text's baseline: its descenders stay above the carrier line
    c.setFont(bold, 13)
    c.drawCentredString(width / 2, yb, tracking_id)
    code, code_width = _barcode(tracking_id, inner)
    bars = _bars_bottom()
    code.drawOn(c, (width - code_width) / 2, bars)
    yb = bars + _BAR_HEIGHT + 6
    text(_MARGIN, yb, "TRACKING", regular, 8, inner)
    yb += 12
    c.line(_MARGIN, yb, width - _MARGIN, yb)
    yb += 10
    text(_MARGIN, yb, "AWB", regular, 9, inner)
    c.setFont(bold, 16)
    c.drawRightString(width - _MARGIN, yb, awb)
    yb += 20
    facts = [f"Order {order_reference}"]
    if parcel.items is not None:
        facts.append(f"{parcel.items} item{'s' if parcel.items != 1 else ''}")
    if parcel.weight_kg is not None:
        facts.append(_kg(parcel.weight_kg))
    text(_MARGIN, yb, "   ".join(facts), regular, 10, inner)
    yb += 12
    c.line(_MARGIN, yb, width - _MARGIN, yb)

    c.showPage()
    c.save()
    return out.getvalue()


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # labels carry addresses
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_label(
    folder: Path | str,
    *,
    awb: str,
    tracking_id: str,
    order_reference: str,
    ship_to: ShipTo | None = None,
    carrier_name: str = "Self ship",
    width_in: float = 4.0,
    height_in: float = 6.0,
    barcode: str = "code128",
    ship_from: ShipFrom | None = None,
    parcel: Parcel | None = None,
) -> Path:
    """Render the label and write it atomically to ``folder/label-<tracking id>.pdf``."""
    data = render_label(
        awb=awb,
        tracking_id=tracking_id,
        order_reference=order_reference,
        ship_to=ship_to,
        carrier_name=carrier_name,
        width_in=width_in,
        height_in=height_in,
        barcode=barcode,
        ship_from=ship_from,
        parcel=parcel,
    )
    path = Path(folder) / label_filename(tracking_id)
    _atomic_write(path, data)
    return path


def issue_shipment(
    folder: Path | str,
    *,
    prefix: str,
    order_id: int | str,
    key: str,
    order_reference: str,
    carrier_name: str = "Self ship",
    ship_to: ShipTo | None = None,
    width_in: float = 4.0,
    height_in: float = 6.0,
    barcode: str = "code128",
    ship_from: ShipFrom | None = None,
    parcel: Parcel | None = None,
) -> Shipment:
    """Allocate the AWB and tracking id, write the label, and return the ``Shipment``.

    Idempotent: the same ``(prefix, order_id, key)`` gives the same numbers and the same
    file, byte for byte. ``prefix``/``carrier_name``/``width_in``/``height_in``/``barcode``
    come from the channel spec's ``fulfilment`` section.
    """
    numbers = allocate_numbers(prefix, order_id, key)
    path = write_label(
        folder,
        awb=numbers.awb,
        tracking_id=numbers.tracking_id,
        order_reference=order_reference,
        ship_to=ship_to,
        carrier_name=carrier_name,
        width_in=width_in,
        height_in=height_in,
        barcode=barcode,
        ship_from=ship_from,
        parcel=parcel,
    )
    return Shipment(numbers.awb, numbers.tracking_id, carrier_name, path)


def issue_shipment_for(
    fulfilment: FulfilmentSpec,
    folder: Path | str,
    *,
    order_id: int | str,
    key: str,
    order_reference: str,
    ship_to: ShipTo | None = None,
    ship_from: ShipFrom | None = None,
    parcel: Parcel | None = None,
) -> Shipment:
    """``issue_shipment`` with prefix, carrier and label format from the channel spec."""
    return issue_shipment(
        folder,
        prefix=fulfilment.awb_prefix,
        order_id=order_id,
        key=key,
        order_reference=order_reference,
        carrier_name=fulfilment.carrier_name,
        ship_to=ship_to,
        width_in=fulfilment.label.width_in,
        height_in=fulfilment.label.height_in,
        barcode=fulfilment.label.barcode,
        ship_from=ship_from,
        parcel=parcel,
    )
