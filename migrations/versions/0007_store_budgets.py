"""store budgets: a store's rate limit and call slots shared by every worker process
(``engine/runtime/db/budget.py``)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 12:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_budgets",
        sa.Column("store", sa.String(1000), primary_key=True),
        sa.Column("starts", sa.Text(), nullable=False),
    )
    op.create_table(
        "concurrency_slots",
        sa.Column("store", sa.String(1000), primary_key=True),
        sa.Column("slot", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("holder", sa.String(200), nullable=True),
        sa.Column("expires_at", sa.Float(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("concurrency_slots")
    op.drop_table("rate_budgets")
