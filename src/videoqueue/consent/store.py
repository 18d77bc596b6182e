"""Every query on consent records. Functions take a session and never commit: the caller does."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from videoqueue.clock import Clock
from videoqueue.consent.models import ConsentMedia, ConsentRecord


def attested_hashes(
    session: Session, *, account_id: str, flow: str, version: str, hashes: Collection[str]
) -> set[str]:
    """Which of `hashes` the account has attested under this flow and policy version."""
    if not hashes:
        return set()
    stmt = (
        select(ConsentMedia.sha256)
        .join(ConsentRecord, ConsentRecord.id == ConsentMedia.record_id)
        .where(
            ConsentMedia.account_id == account_id,
            ConsentMedia.sha256.in_(list(hashes)),
            ConsentRecord.consent_flow == flow,
            ConsentRecord.consent_version == version,
        )
    )
    return set(session.scalars(stmt))


def record_consent(
    session: Session,
    *,
    account_id: str,
    flow: str,
    version: str,
    model: str,
    media: Sequence[tuple[str, str]],
    clock: Clock,
) -> ConsentRecord:
    """Store an attestation covering `media`, a list of (sha256, role)."""
    record = ConsentRecord(
        account_id=account_id,
        consent_flow=flow,
        consent_version=version,
        model=model,
        created_at=clock.now(),
    )
    record.media = [
        ConsentMedia(sha256=sha256, account_id=account_id, role=role, position=i)
        for i, (sha256, role) in enumerate(media)
    ]
    session.add(record)
    session.flush()
    return record


def list_consents(session: Session, *, account_id: str) -> list[ConsentRecord]:
    """The account's attestations, newest first, with the media each covers."""
    stmt = (
        select(ConsentRecord)
        .where(ConsentRecord.account_id == account_id)
        .options(selectinload(ConsentRecord.media))
        .order_by(ConsentRecord.created_at.desc(), ConsentRecord.id)
    )
    return list(session.scalars(stmt))


def delete_consent(session: Session, *, account_id: str, record_id: str) -> bool:
    """Erase one of the account's attestations and its media hashes; False if there is none."""
    record = session.scalar(
        select(ConsentRecord).where(
            ConsentRecord.id == record_id, ConsentRecord.account_id == account_id
        )
    )
    if record is None:
        return False
    session.delete(record)
    session.flush()
    return True
