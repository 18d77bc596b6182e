"""The webhook tables: each account's signing secret, the outbox of deliveries, and every
attempt made at one."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from videoqueue.db.base import Base, UTCDateTime, new_id

DELIVERY_ID_LENGTH = 40


class WebhookSecret(Base):
    """The key an account's deliveries are signed with (`whsec_…`). Kept as it was made,
    because signing needs it; only `POST /webhooks/secret` ever shows it, once."""

    __tablename__ = "webhook_secrets"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    secret: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DeliveryState(enum.StrEnum):
    PENDING = "pending"
    """Not yet answered with a 2xx; sent again at `next_attempt_at`."""
    DELIVERED = "delivered"
    FAILED = "failed"
    """Every attempt of the retry schedule failed: given up."""


class WebhookDelivery(Base):
    """One event to send to one URL, written in the transaction that ended its job. Its id is
    the `webhook-id` of every attempt; `body` is the exact JSON sent each time."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_state_next", "state", "next_attempt_at"),
        Index("ix_webhook_deliveries_account_created", "account_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(DELIVERY_ID_LENGTH), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    event: Mapped[str] = mapped_column(String(40))
    url: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[DeliveryState] = mapped_column(
        Enum(
            DeliveryState,
            native_enum=False,
            length=16,
            values_callable=lambda states: [s.value for s in states],
        )
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    """When it was delivered, or given up."""


class WebhookAttempt(Base):
    """One POST of a delivery: the status it was answered with, or why it got none."""

    __tablename__ = "webhook_attempts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("webhook_deliveries.id"), index=True)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_ms: Mapped[int] = mapped_column(Integer)
