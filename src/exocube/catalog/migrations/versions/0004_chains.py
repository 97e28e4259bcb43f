"""durable chains of Bayesian fits and brokered task results

Revision ID: 0004_chains
Revises: 0003_simulation_runs
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_chains"
down_revision = "0003_simulation_runs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fits",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("provenance", sa.JSON(), nullable=False),
        sa.Column("sampler", sa.JSON(), nullable=False),
        sa.Column("warmup_state", sa.LargeBinary(), nullable=True),
        sa.Column("diagnostics", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "fit_blocks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fit_id", sa.String(length=32), nullable=False),
        sa.Column("block_index", sa.Integer(), nullable=False),
        sa.Column("n_draws", sa.Integer(), nullable=False),
        sa.Column("divergences", sa.Integer(), nullable=False),
        sa.Column("draws", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["fit_id"], ["fits.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("fit_id", "block_index", name="uq_fit_blocks_index"),
    )
    op.create_table(
        "task_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.String(length=64), nullable=False),
        sa.Column("queue", sa.String(length=128), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("worker", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("task_id", name="uq_task_results_task"),
    )


def downgrade() -> None:
    op.drop_table("task_results")
    op.drop_table("fit_blocks")
    op.drop_table("fits")
