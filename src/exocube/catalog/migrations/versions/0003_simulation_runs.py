"""simulations: what a real GCM run reports (wall time, failure reason, log tail,
equilibrium diagnostics, configuration, years run)

Revision ID: 0003_simulation_runs
Revises: 0002_model_promotion
Create Date: 2026-12-01 22:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_simulation_runs"
down_revision = "0002_model_promotion"
branch_labels = None
depends_on = None

COLUMNS = (
    ("wall_time_s", sa.Float()),
    ("years_run", sa.Integer()),
    ("equilibrated", sa.Boolean()),
    ("diagnostics", sa.JSON()),
    ("config", sa.JSON()),
    ("error", sa.Text()),
    ("log_tail", sa.Text()),
    ("updated_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    with op.batch_alter_table("simulations") as batch:
        for name, type_ in COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("simulations") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
