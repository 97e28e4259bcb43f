"""fits: what the multi-start optimisation found before the chains started

Revision ID: 0006_fit_start_report
Revises: 0005_campaigns
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_fit_start_report"
down_revision = "0005_campaigns"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fits") as batch:
        batch.add_column(sa.Column("start_report", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("fits") as batch:
        batch.drop_column("start_report")
