"""orders.attention_state: the state a refused event flagged the order in (NULL: sticky)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 10:00:00

A flag raised by a refused event clears by itself when an applied transition takes the
order out of the state it was raised in; a flag raised by a dead effect (NULL here) stays
until ``omsflow orders ack``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("attention_state", sa.String(length=64), nullable=True))
    # flags raised before this revision were all refusals: they clear on moving on
    op.execute("UPDATE orders SET attention_state = state WHERE needs_attention")


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("attention_state")
