"""Face-media consent: an account's attestation, and the media (by content hash) it covers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from videoqueue.db.base import Base, UTCDateTime, new_id


class ConsentRecord(Base):
    """One `consents.seedance` attestation, given with one accepted request."""

    __tablename__ = "consent_records"
    __table_args__ = (Index("ix_consent_records_account_created", "account_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    consent_flow: Mapped[str] = mapped_column(String(32))
    consent_version: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    media: Mapped[list[ConsentMedia]] = relationship(
        back_populates="record", cascade="all, delete-orphan", order_by="ConsentMedia.position"
    )


class ConsentMedia(Base):
    """A face-bearing file an attestation covers, by the SHA-256 of its exact bytes."""

    __tablename__ = "consent_media"
    __table_args__ = (Index("ix_consent_media_account_sha256", "account_id", "sha256"),)

    record_id: Mapped[str] = mapped_column(
        ForeignKey("consent_records.id", ondelete="CASCADE"), primary_key=True
    )
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    role: Mapped[str] = mapped_column(String(32))
    position: Mapped[int] = mapped_column(default=0)
    record: Mapped[ConsentRecord] = relationship(back_populates="media")
