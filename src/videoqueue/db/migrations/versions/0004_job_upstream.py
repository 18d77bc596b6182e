"""jobs: the upstream job an engine that forwards started, kept across attempts

Revision ID: 0004_job_upstream
Revises: 0003_key_privacy
Create Date: 2026-12-01 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_job_upstream"
down_revision = "0003_key_privacy"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("upstream_queue_id", sa.String(200), nullable=True))
        batch_op.add_column(sa.Column("upstream_download_url", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("upstream_download_url")
        batch_op.drop_column("upstream_queue_id")
