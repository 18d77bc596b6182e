"""jobs: when the upstream job of an ended job was released there, so that a worker releases
each one once

Revision ID: 0007_upstream_release
Revises: 0006_workers
Create Date: 2026-12-01 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import videoqueue.db.base

revision = "0007_upstream_release"
down_revision = "0006_workers"
branch_labels = None
depends_on = None

UNRELEASED = sa.text("upstream_queue_id IS NOT NULL AND upstream_released_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "upstream_released_at",
                videoqueue.db.base.UTCDateTime(timezone=True),
                nullable=True,
            )
        )
    op.create_index(
        "ix_jobs_upstream_unreleased",
        "jobs",
        ["finished_at"],
        postgresql_where=UNRELEASED,
        sqlite_where=UNRELEASED,
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_upstream_unreleased", table_name="jobs")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("upstream_released_at")
