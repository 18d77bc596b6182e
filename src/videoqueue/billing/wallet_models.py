"""Tables of the wallet side of billing: x402 payments and the requests a wallet has in flight."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, Enum, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from videoqueue.db.base import Base, UTCDateTime, new_id


class PaymentState(enum.StrEnum):
    PENDING = "PENDING"
    SETTLED = "SETTLED"
    FAILED = "FAILED"


class X402Payment(Base):
    """One signed x402 payment, keyed by its payment id, so that it is settled and credited once.

    A PENDING row is a payment being verified and settled right now; a second submission of
    it meanwhile is answered 409. A SETTLED row points at its ledger entry (reference = id).
    """

    __tablename__ = "x402_payments"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    payload_sha256: Mapped[str] = mapped_column(String(64))
    network: Mapped[str] = mapped_column(String(100))
    state: Mapped[PaymentState] = mapped_column(Enum(PaymentState, native_enum=False, length=16))
    amount_micros: Mapped[int] = mapped_column(BigInteger)
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"), nullable=True)
    transaction: Mapped[str | None] = mapped_column(String(200), nullable=True)
    failure: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WalletRequest(Base):
    """A request a wallet has in flight (the concurrency cap counts these rows).

    The row is deleted when the response ends; `expires_at` frees the slot of a request whose
    API process died before it could.
    """

    __tablename__ = "wallet_requests"
    __table_args__ = (Index("ix_wallet_requests_account_expires", "account_id", "expires_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
