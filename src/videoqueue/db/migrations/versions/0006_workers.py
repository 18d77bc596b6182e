"""workers: each worker process's registration and heartbeat, so the fleet is visible

Revision ID: 0006_workers
Revises: 0005_webhooks
Create Date: 2026-12-01 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import videoqueue.db.base

revision = "0006_workers"
down_revision = "0005_webhooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("device", sa.String(length=50), nullable=True),
        sa.Column("engines", sa.JSON(), nullable=False),
        sa.Column("current_job_id", sa.String(length=36), nullable=True),
        sa.Column(
            "state",
            sa.Enum(
                "running", "stopping", "lost", name="workerstate", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("started_at", videoqueue.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", videoqueue.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
    )
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_workers_heartbeat_at"), ["heartbeat_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workers_heartbeat_at"))
    op.drop_table("workers")
