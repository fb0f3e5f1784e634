"""Issue 5's story as ONE test, over real HTTP on loopback, on SQLite and PostgreSQL:

a paid order in the store -> imported New (sync orders) -> released -> a signed ``picked``
event POSTed to the WMS receiver -> dispatcher passes -> the store shows Shipped and the
tracking number on the order's carrier -> the WMS endpoint received the AWB, tracking id,
carrier and the label (a 4x6 PDF whose Code 128 barcode reads back as the tracking id) ->
the store marks Delivered -> sync orders -> Complete.
"""

from __future__ import annotations

import base64
import io
from decimal import Decimal
from pathlib import Path

import pytest
from pypdf import PdfReader

from engine.runtime.fulfilment.awb import is_valid_awb, is_valid_tracking_id
from engine.runtime.specs import Bundle, load_bundle
from engine.runtime.wms.client import send_event
from tests.runtime.fulfilment.code128 import read_code128
from tests.runtime.fulfilment_flow.conftest import SECRET
from tests.runtime.fulfilment_flow.story import world


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return load_bundle()


@pytest.mark.slow
def test_a_paid_order_is_picked_shipped_tracked_and_delivered(
    db_url: str, bundle: Bundle, tmp_path: Path
) -> None:
    with world(db_url, bundle, tmp_path) as w:
        # a paid order in the store, imported New with its lines reserved
        ext = w.orders_in("New")[0]
        assert w.store_state(ext) == "Payment accepted"
        order = w.order(ext)
        assert all(line.reserved == line.quantity for line in order.lines)

        # released to the warehouse; the store shows Processing in progress
        assert w.fire(ext, "release").state == "RFP"
        assert w.dispatch().dead == 0
        assert w.store_state(ext) == "Processing in progress"

        # the warehouse reports it picked: signed event over HTTP -> Ready_to_Ship
        status, answer = send_event(w.receiver.url, SECRET, "picked", order.reference)
        assert (status, answer["outcome"], answer["state"]) == (202, "applied", "Ready_to_Ship")
        assert w.store_state(ext) == "Processing in progress"  # nothing sent before commit

        # dispatcher: Shipped in the store -> AWB + label -> tracking + WMS details
        stats = w.dispatch()
        assert stats.dead == 0, stats.errors
        assert stats.followups == 2  # shipment_confirmed, awb_ready
        assert w.order(ext).state == "Ready_to_Ship"
        assert w.store_state(ext) == "Shipped"
        shipment = w.shipment(ext)
        assert is_valid_awb(shipment.awb, "OMS")
        assert is_valid_tracking_id(shipment.tracking_id or "", "OMS")
        assert w.store_tracking(ext) == [shipment.tracking_id]
        assert all(state == "done" for _, state in w.outbox(ext))

        # the WMS endpoint received the shipping details, signed (it verified)
        assert w.wms.refused == []
        (details,) = w.wms.bodies()
        assert details["order_reference"] == order.reference
        assert details["awb"] == shipment.awb
        assert details["tracking_id"] == shipment.tracking_id
        assert details["carrier"] == "Self ship"
        pdf = base64.b64decode(details["label"]["base64"])
        assert details["label"]["content_type"] == "application/pdf"
        assert pdf == Path(str(shipment.label_path)).read_bytes()
        reader = PdfReader(io.BytesIO(pdf))
        (page,) = reader.pages
        assert (float(page.mediabox.width), float(page.mediabox.height)) == (288.0, 432.0)
        text = page.extract_text()
        assert shipment.tracking_id in text
        # the consignee as the store has them, and the order's carrier as the service
        record = w.shop.store.tables["orders"][int(ext)]
        address = w.shop.store.tables["addresses"][int(record["id_address_delivery"])]
        country = w.shop.store.tables["countries"][int(address["id_country"])]
        carrier = w.shop.store.tables["carriers"][int(record["id_carrier"])]
        for expected in (
            f"{address['firstname']} {address['lastname']}",
            address["address1"],
            f"{address['postcode']} {address['city']}",
            country["name"][1],
            f"Service: {carrier['name']}",
        ):
            assert expected in text, expected
        # the parcel's weight: each line's unit weight (its order_details) x its quantity
        details = w.shop.store.tables["order_details"]
        weight = sum(
            Decimal(details[int(line.external_id or 0)]["product_weight"]) * line.quantity
            for line in order.lines
        )
        kg = f"{Decimal(weight).quantize(Decimal('0.001')):f}".rstrip("0").rstrip(".")
        assert f"{kg} kg" in text, (kg, text)
        assert read_code128(str(shipment.label_path)) == shipment.tracking_id

        # the merchant marks it Delivered in the store; the next order sync completes it
        w.store_marks(ext, "Delivered")
        counts = w.sync()
        assert counts.get("changes_applied") == 1
        final = w.order(ext)
        assert final.state == "Complete"
        assert not final.needs_attention
        assert all(line.consumed == line.quantity for line in final.lines)
        assert [(t, frm, to, src) for t, frm, to, ok, src in w.audit(ext) if ok] == [
            ("import", "Incoming", "New", "channel"),
            ("release", "New", "RFP", "user"),
            ("picked", "RFP", "Ready_to_Ship", "wms"),
            ("shipment_confirmed", "Ready_to_Ship", "Ready_to_Ship", "system"),
            ("awb_ready", "Ready_to_Ship", "Ready_to_Ship", "system"),
            ("delivered", "Ready_to_Ship", "Complete", "channel"),
        ]
        assert w.store_state(ext) == "Delivered"
