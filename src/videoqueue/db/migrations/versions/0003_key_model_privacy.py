"""api_keys: modelPrivacy, the privacy tier of the models a key may call

Revision ID: 0003_key_privacy
Revises: 0002
Create Date: 2026-12-01 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_key_privacy"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "model_privacy",
                sa.Enum(
                    "ALL",
                    "PRIVATE_TEXT",
                    "PRIVATE_ONLY",
                    name="modelprivacy",
                    native_enum=False,
                    length=16,
                ),
                server_default="ALL",
                nullable=False,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("model_privacy")
