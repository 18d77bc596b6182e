"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 00:16:15.481005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import videoqueue.db.base

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "OPERATOR", "STANDARD", "WALLET", name="accountkind", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("unlimited", sa.Boolean(), nullable=False),
        sa.Column("wallet_address", sa.String(length=64), nullable=True),
        sa.Column("balance_micros", sa.BigInteger(), nullable=False),
        sa.Column("created_at", videoqueue.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("wallet_address", name=op.f("uq_accounts_wallet_address")),
    )
    op.create_table(
        "rate_limit_windows",
        sa.Column("bucket", sa.String(length=300), nullable=False),
        sa.Column("window_start", videoqueue.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "window_start", name=op.f("pk_rate_limit_windows")),
    )
    op.create_table(
        "siwx_nonces",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("wallet_address", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=128), nullable=False),
        sa.Column("expires_at", videoqueue.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_siwx_nonces")),
        sa.UniqueConstraint("wallet_address", "nonce", name=op.f("uq_siwx_nonces_wallet_address")),
    )
    with op.batch_alter_table("siwx_nonces", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_siwx_nonces_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("INFERENCE", "ADMIN", name="keykind", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("last_chars", sa.String(length=8), nullable=False),
        sa.Column("created_at", videoqueue.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", videoqueue.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", videoqueue.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", videoqueue.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("usd_limit_micros", sa.BigInteger(), nullable=True),
        sa.Column(
            "limit_period",
            sa.Enum("EPOCH", "MONTH", "LIFETIME", name="limitperiod", native_enum=False, length=16),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_api_keys_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_account_id"), ["account_id"], unique=False)

    op.create_table(
        "consent_records",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("consent_flow", sa.String(length=32), nullable=False),
        sa.Column("consent_version", sa.String(length=16), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("created_at", videoqueue.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_consent_records_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_records")),
    )
    with op.batch_alter_table("consent_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_consent_records_account_created", ["account_id", "created_at"], unique=False
        )

    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("created_at", videoqueue.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_idempotency_keys_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint("account_id", "key", name="uq_idempotency_keys_account_key"),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("engine", sa.String(length=50), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "QUEUED",
                "RUNNING",
                "COMPLETED",
                "FAILED",
                "CANCELLED",
                "DELETED",
                "EXPIRED",
                name="jobstate",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("price_micros", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        sa.Column("lease_expires_at", videoqueue.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("created_at", videoqueue.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", videoqueue.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", videoqueue.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("output_key", sa.String(length=300), nullable=True),
        sa.Column("output_bytes", sa.BigInteger(), nullable=True),
        sa.Column("error_status", sa.Integer(), nullable=True),
        sa.Column("error_body", sa.JSON(), nullable=True),
        sa.Column("media_deleted_at", videoqueue.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_jobs_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_jobs_account_id"), ["account_id"], unique=False)
        batch_op.create_index("ix_jobs_model_finished", ["model", "finished_at"], unique=False)
        batch_op.create_index("ix_jobs_state_created", ["state", "created_at"], unique=False)

    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "TOP_UP",
                "CHARGE",
                "REFUND",
                "ADJUSTMENT",
                name="ledgerkind",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("balance_after_micros", sa.BigInteger(), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=True),
        sa.Column("api_key_id", sa.String(length=36), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("created_at", videoqueue.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_ledger_entries_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
        sa.UniqueConstraint("job_id", "kind", name="uq_ledger_entries_job_kind"),
        sa.UniqueConstraint("reference", name="uq_ledger_entries_reference"),
    )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ledger_entries_account_created", ["account_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_ledger_entries_api_key_created", ["api_key_id", "created_at"], unique=False
        )

    op.create_table(
        "wallet_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("started_at", videoqueue.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", videoqueue.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_wallet_requests_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallet_requests")),
    )
    with op.batch_alter_table("wallet_requests", schema=None) as batch_op:
        batch_op.create_index(
            "ix_wallet_requests_account_expires", ["account_id", "expires_at"], unique=False
        )

    op.create_table(
        "x402_payments",
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("payload_sha256", sa.String(length=64), nullable=False),
        sa.Column("network", sa.String(length=100), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "PENDING", "SETTLED", "FAILED", name="paymentstate", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=True),
        sa.Column("transaction", sa.String(length=200), nullable=True),
        sa.Column("failure", sa.String(length=500), nullable=True),
        sa.Column("created_at", videoqueue.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", videoqueue.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_x402_payments_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_x402_payments")),
    )
    op.create_table(
        "consent_media",
        sa.Column("record_id", sa.String(length=36), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_consent_media_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["consent_records.id"],
            name=op.f("fk_consent_media_record_id_consent_records"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("record_id", "sha256", name=op.f("pk_consent_media")),
    )
    with op.batch_alter_table("consent_media", schema=None) as batch_op:
        batch_op.create_index(
            "ix_consent_media_account_sha256", ["account_id", "sha256"], unique=False
        )

    op.create_table(
        "delivery_links",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", videoqueue.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", videoqueue.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("max_fetches", sa.Integer(), nullable=False),
        sa.Column("fetch_count", sa.Integer(), nullable=False),
        sa.Column("last_fetch_at", videoqueue.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "window_started_at", videoqueue.db.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("window_count", sa.Integer(), nullable=False),
        sa.Column("revoked_at", videoqueue.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("delete_after_download", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_delivery_links_job_id_jobs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_links")),
    )
    with op.batch_alter_table("delivery_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_delivery_links_job_id"), ["job_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("delivery_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_links_job_id"))

    op.drop_table("delivery_links")
    with op.batch_alter_table("consent_media", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_media_account_sha256")

    op.drop_table("consent_media")
    op.drop_table("x402_payments")
    with op.batch_alter_table("wallet_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_wallet_requests_account_expires")

    op.drop_table("wallet_requests")
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_entries_api_key_created")
        batch_op.drop_index("ix_ledger_entries_account_created")

    op.drop_table("ledger_entries")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_state_created")
        batch_op.drop_index("ix_jobs_model_finished")
        batch_op.drop_index(batch_op.f("ix_jobs_account_id"))

    op.drop_table("jobs")
    op.drop_table("idempotency_keys")
    with op.batch_alter_table("consent_records", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_records_account_created")

    op.drop_table("consent_records")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_account_id"))

    op.drop_table("api_keys")
    with op.batch_alter_table("siwx_nonces", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_siwx_nonces_expires_at"))

    op.drop_table("siwx_nonces")
    op.drop_table("rate_limit_windows")
    op.drop_table("accounts")
