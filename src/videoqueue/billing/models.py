"""Accounts and the ledger that holds their money."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, Enum, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from videoqueue.db.base import Base, UTCDateTime, new_id

MICROS_PER_USD = 1_000_000


def usd_to_micros(usd: float | str) -> int:
    """USD (as a client or operator wrote it) in micro-USD, truncating below a micro."""
    return int(Decimal(str(usd)) * MICROS_PER_USD)


def usd_text(micros: int, places: int) -> str:
    """Micro-USD as an exact decimal string with `places` decimals (`"4.230000"`)."""
    return f"{Decimal(micros) / MICROS_PER_USD:.{places}f}"


class AccountKind(enum.StrEnum):
    OPERATOR = "OPERATOR"
    STANDARD = "STANDARD"
    WALLET = "WALLET"


class LedgerKind(enum.StrEnum):
    TOP_UP = "TOP_UP"
    CHARGE = "CHARGE"
    REFUND = "REFUND"
    ADJUSTMENT = "ADJUSTMENT"


class LimitPeriod(enum.StrEnum):
    """The window an API key's spend limit counts over (Venice's `limitPeriod`)."""

    EPOCH = "EPOCH"  # a UTC day
    MONTH = "MONTH"  # a UTC calendar month
    LIFETIME = "LIFETIME"  # never resets


class Account(Base):
    """Who pays. `balance_micros` caches the sum of its ledger rows, written with each of them."""

    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[AccountKind] = mapped_column(Enum(AccountKind, native_enum=False, length=16))
    unlimited: Mapped[bool] = mapped_column(Boolean, default=False)
    wallet_address: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    balance_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LedgerEntry(Base):
    """One movement of money. A job is charged at most once and refunded at most once."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("job_id", "kind", name="uq_ledger_entries_job_kind"),
        UniqueConstraint("reference", name="uq_ledger_entries_reference"),
        Index("ix_ledger_entries_account_created", "account_id", "created_at"),
        Index("ix_ledger_entries_api_key_created", "api_key_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[LedgerKind] = mapped_column(Enum(LedgerKind, native_enum=False, length=16))
    amount_micros: Mapped[int] = mapped_column(BigInteger)
    balance_after_micros: Mapped[int] = mapped_column(BigInteger)
    job_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    # The key a CHARGE was made with (its REFUND copies it): per-key spend is summed from these.
    api_key_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reference: Mapped[str | None] = mapped_column(String(200), nullable=True)
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
