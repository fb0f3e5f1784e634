"""The shipping label: a one-page 4x6 inch PDF with a Code 128 barcode of the tracking id.

Rendered with reportlab in invariant mode (no creation date, fixed document id), so the
same shipment always gives byte-identical PDFs and a retried effect rewrites the same
file. Files are written atomically: a temporary file in the target folder, fsync, then
``os.replace``; a reader never sees half a label.
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from reportlab.graphics.barcode.code128 import Code128
from reportlab.lib.units import inch
from reportlab.pdfgen.canvas import Canvas

from engine.errors import ConfigError
from engine.runtime.fulfilment.awb import Shipment, allocate_numbers
from engine.spec.model import FulfilmentSpec

__all__ = [
    "ShipTo",
    "issue_shipment",
    "issue_shipment_for",
    "label_filename",
    "render_label",
    "write_label",
]

_MARGIN = 14.0
_BAR_HEIGHT = 96.0
_MAX_MODULE = 1.6  # pt; wider bars only waste label width
_MIN_MODULE = 0.7  # pt; ~2 dots on a 203 dpi thermal printer: narrower will not scan
_QUIET_MODULES = 10


@dataclass(frozen=True)
class ShipTo:
    """The consignee as printed on the label: a name and up to five address lines."""

    name: str
    lines: tuple[str, ...] = ()


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
) -> bytes:
    """The label PDF as bytes (deterministic for the same arguments)."""
    if barcode.lower() != "code128":
        raise ConfigError(
            f"fulfilment.label.barcode {barcode!r} is not supported (fix: barcode: code128)"
        )
    width, height = width_in * inch, height_in * inch
    inner = width - 2 * _MARGIN
    out = io.BytesIO()
    c = Canvas(out, pagesize=(width, height), invariant=1)
    c.setTitle(f"Shipping label {tracking_id}")
    c.setAuthor("omsflow")
    c.setLineWidth(1.2)
    c.rect(_MARGIN / 2, _MARGIN / 2, width - _MARGIN, height - _MARGIN, stroke=1, fill=0)

    y = height - _MARGIN - 16
    c.setFont("Helvetica-Bold", 16)
    c.drawString(_MARGIN, y, _fit(c, carrier_name, "Helvetica-Bold", 16, inner))
    y -= 14
    c.setFont("Helvetica", 9)
    c.drawString(_MARGIN, y, _fit(c, f"Order {order_reference}", "Helvetica", 9, inner))
    y -= 10
    c.line(_MARGIN, y, width - _MARGIN, y)

    y -= 16
    c.setFont("Helvetica-Bold", 9)
    c.drawString(_MARGIN, y, "SHIP TO")
    if ship_to is not None:
        y -= 15
        c.setFont("Helvetica-Bold", 13)
        c.drawString(_MARGIN, y, _fit(c, ship_to.name, "Helvetica-Bold", 13, inner))
        c.setFont("Helvetica", 11)
        for line in ship_to.lines[:5]:
            y -= 13
            c.drawString(_MARGIN, y, _fit(c, line, "Helvetica", 11, inner))
    else:
        y -= 15
        c.setFont("Helvetica-Oblique", 10)
        c.drawString(_MARGIN, y, "(address on the order)")

    # Bottom block, laid out upwards from the bottom margin.
    yb = _MARGIN + 6
    c.setFont("Helvetica", 9)
    c.drawString(_MARGIN, yb, _fit(c, f"Carrier: {carrier_name}", "Helvetica", 9, inner))
    yb += 18
    c.setFont("Helvetica-Bold", 13)
    c.drawCentredString(width / 2, yb, tracking_id)
    yb += 8
    code, code_width = _barcode(tracking_id, inner)
    code.drawOn(c, (width - code_width) / 2, yb)
    yb += _BAR_HEIGHT + 8
    c.setFont("Helvetica", 9)
    c.drawString(_MARGIN, yb, "TRACKING")
    yb += 14
    c.setLineWidth(0.8)
    c.line(_MARGIN, yb, width - _MARGIN, yb)
    yb += 12
    c.setFont("Helvetica", 9)
    c.drawString(_MARGIN, yb, "AWB")
    c.setFont("Helvetica-Bold", 18)
    c.drawRightString(width - _MARGIN, yb, awb)

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
    )
