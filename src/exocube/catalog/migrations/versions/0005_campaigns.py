"""campaigns of brokered IFU fits (inject-recover, jackknife)

Revision ID: 0005_campaigns
Revises: 0004_chains
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_campaigns"
down_revision = "0004_chains"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(length=48), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("n_tasks", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("campaigns")
