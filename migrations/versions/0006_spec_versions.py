"""spec versions: each order, audit row and outbox row names the spec version that wrote it;
``spec_versions`` keeps a copy of every spec version the database has run

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 11:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("orders", "audit", "outbox")


def upgrade() -> None:
    op.create_table(
        "spec_versions",
        sa.Column("version", sa.String(32), primary_key=True),
        sa.Column("label", sa.String(64), nullable=True),
        sa.Column("machine_file", sa.String(1000), nullable=False),
        sa.Column("machine_text", sa.Text(), nullable=False),
        sa.Column("channel_file", sa.String(1000), nullable=False),
        sa.Column("channel_text", sa.Text(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    )
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("spec_version", sa.String(32), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("spec_version")
    op.drop_table("spec_versions")
