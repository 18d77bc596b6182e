"""API keys, stored only as hashes."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, Enum, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from videoqueue.billing.models import LimitPeriod
from videoqueue.db.base import Base, UTCDateTime, new_id


class KeyKind(enum.StrEnum):
    INFERENCE = "INFERENCE"
    ADMIN = "ADMIN"


class ModelPrivacy(enum.StrEnum):
    """Which models a key may call, by privacy tier (Venice's `modelPrivacy`)."""

    ALL = "ALL"
    PRIVATE_TEXT = "PRIVATE_TEXT"
    """Text and embedding models must be private; other modalities (video) may be either."""
    PRIVATE_ONLY = "PRIVATE_ONLY"


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[KeyKind] = mapped_column(Enum(KeyKind, native_enum=False, length=16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    last_chars: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # USD the key may spend per `limit_period` (CHARGEs less their REFUNDs); None = no limit.
    usd_limit_micros: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    limit_period: Mapped[LimitPeriod] = mapped_column(
        Enum(LimitPeriod, native_enum=False, length=16), default=LimitPeriod.EPOCH
    )
    model_privacy: Mapped[ModelPrivacy] = mapped_column(
        Enum(ModelPrivacy, native_enum=False, length=16),
        default=ModelPrivacy.ALL,
        server_default=ModelPrivacy.ALL.value,
    )


class RateLimitWindow(Base):
    """Requests counted in one fixed time window of one bucket (a key, a route, a model).

    Shared by every API process: a request adds 1 with a single atomic upsert.
    """

    __tablename__ = "rate_limit_windows"

    bucket: Mapped[str] = mapped_column(String(300), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
