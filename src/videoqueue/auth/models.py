"""API keys, stored only as hashes."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from videoqueue.db.base import Base, UTCDateTime, new_id


class KeyKind(enum.StrEnum):
    INFERENCE = "INFERENCE"
    ADMIN = "ADMIN"


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
