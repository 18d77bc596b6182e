"""Sign-in nonces: each usable once per wallet, remembered in the database by every API process."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, UniqueConstraint, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from videoqueue.clock import Clock
from videoqueue.db.base import Base, UTCDateTime, new_id
from videoqueue.errors import VideoqueueError


class SignInNonce(Base):
    """A nonce a wallet has signed in with, kept until no message carrying it can still be valid."""

    __tablename__ = "siwx_nonces"
    __table_args__ = (UniqueConstraint("wallet_address", "nonce"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    wallet_address: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class NonceReused(VideoqueueError):
    """Sign-in-with-X nonce has already been used"""

    status = 401
    code = "X402_SIGN_IN_NONCE_REUSED"


def consume_nonce(
    session: Session, *, wallet_address: str, nonce: str, keep_until: datetime, clock: Clock
) -> None:
    """Mark the wallet's nonce used. Raises `NonceReused` if it already was."""
    session.execute(delete(SignInNonce).where(SignInNonce.expires_at <= clock.now()))
    seen = session.scalar(
        select(SignInNonce.id).where(
            SignInNonce.wallet_address == wallet_address, SignInNonce.nonce == nonce
        )
    )
    if seen is not None:
        raise NonceReused()
    try:
        with session.begin_nested():
            session.add(
                SignInNonce(wallet_address=wallet_address, nonce=nonce, expires_at=keep_until)
            )
            session.flush()
    except IntegrityError:
        # The same header raced us from another API process (PostgreSQL): it won.
        raise NonceReused() from None
