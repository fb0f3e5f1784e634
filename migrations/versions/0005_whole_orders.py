"""whole orders: invoice address, carrier, ship-to country, customer phone, more totals

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 11:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(
            sa.Column("invoice_address", sa.JSON(), nullable=False, server_default="{}")
        )
        batch.add_column(sa.Column("carrier", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("ship_country", sa.String(length=2), nullable=True))
        batch.add_column(sa.Column("customer_phone", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("total_discounts", sa.Numeric(12, 2), nullable=True))
        batch.add_column(sa.Column("total_wrapping", sa.Numeric(12, 2), nullable=True))
        batch.add_column(sa.Column("total_paid_tax_excl", sa.Numeric(12, 2), nullable=True))
        batch.create_index("ix_orders_ship_country", ["ship_country"])
        batch.create_index("ix_orders_carrier", ["carrier"])


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_index("ix_orders_carrier")
        batch.drop_index("ix_orders_ship_country")
        for name in (
            "total_paid_tax_excl",
            "total_wrapping",
            "total_discounts",
            "customer_phone",
            "ship_country",
            "carrier",
            "invoice_address",
        ):
            batch.drop_column(name)
