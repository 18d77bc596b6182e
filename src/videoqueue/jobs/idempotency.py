"""`Idempotency-Key` on `/video/queue`: the same key and body within the TTL get the answer
the first request got, and are charged once.

The key is claimed, and its answer stored, in the same transaction as the job and its charge,
under a unique (account, key) constraint: of two racing requests one commits, the other's
insert fails, its transaction rolls back before anything is charged, and it answers the
stored answer.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from videoqueue.catalog.issues import BadRequest
from videoqueue.clock import Clock
from videoqueue.db.base import Base, UTCDateTime, new_id
from videoqueue.db.session import Database
from videoqueue.errors import VideoqueueError

MAX_KEY_LENGTH = 255


class IdempotencyRecord(Base):
    """The answer given to the first request that used an idempotency key."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("account_id", "key", name="uq_idempotency_keys_account_key"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH))
    request_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IdempotencyKeyReused(VideoqueueError):
    """This Idempotency-Key was already used with a different request body. Use a new key for a new request."""  # noqa: E501

    status = 409
    code = "IDEMPOTENCY_KEY_REUSED"


class IdempotencyKeyTaken(VideoqueueError):
    """A concurrent request with the same Idempotency-Key committed first."""

    status = 409


def request_fingerprint(body: dict[str, Any]) -> str:
    """A hash of the body that ignores key order and whitespace."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class IdempotentRequest:
    """A queue request that carries an `Idempotency-Key`."""

    account_id: str
    key: str
    fingerprint: str
    ttl: timedelta

    @classmethod
    def from_header(
        cls, header: str | None, *, account_id: str, body: dict[str, Any], ttl_seconds: float
    ) -> IdempotentRequest | None:
        """None without the header; raises `BadRequest` for an empty or overlong key."""
        if header is None:
            return None
        key = header.strip()
        if not key or len(key) > MAX_KEY_LENGTH:
            raise BadRequest(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters")
        return cls(
            account_id=account_id,
            key=key,
            fingerprint=request_fingerprint(body),
            ttl=timedelta(seconds=ttl_seconds),
        )

    def _stored(self, session: Session, clock: Clock) -> dict[str, Any] | None:
        record = session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.account_id == self.account_id,
                IdempotencyRecord.key == self.key,
                IdempotencyRecord.created_at > clock.now() - self.ttl,
            )
        )
        if record is None:
            return None
        if record.request_hash != self.fingerprint:
            raise IdempotencyKeyReused()
        return dict(record.response)

    def replay(self, db: Database, clock: Clock) -> dict[str, Any] | None:
        """The answer stored for this key, or None if it is new (or expired).

        Raises `IdempotencyKeyReused` if the key was used with another body.
        """
        with db.transaction() as session:
            return self._stored(session, clock)

    def replay_after_race(self, db: Database, clock: Clock) -> dict[str, Any]:
        """The answer of the request that won a race for this key (see `remember`)."""
        answer = self.replay(db, clock)
        if answer is None:
            raise IdempotencyKeyTaken()
        return answer

    def claim(self, session: Session, clock: Clock) -> IdempotencyRecord:
        """Take the key in the caller's transaction (the one creating the job), before the
        charge; `remember` then stores the answer in the same transaction.

        Raises `IdempotencyKeyTaken` if another request holds the key: the caller's
        transaction must roll back and answer `replay_after_race`. Call it once the account
        row is locked, so that on PostgreSQL a racing request's answer is already visible.
        """
        now = clock.now()
        session.execute(
            delete(IdempotencyRecord)
            .where(
                IdempotencyRecord.account_id == self.account_id,
                IdempotencyRecord.key == self.key,
                IdempotencyRecord.created_at <= now - self.ttl,
            )
            .execution_options(synchronize_session=False)
        )
        record = IdempotencyRecord(
            account_id=self.account_id,
            key=self.key,
            request_hash=self.fingerprint,
            response={},
            created_at=now,
        )
        session.add(record)
        try:
            session.flush()
        except IntegrityError:
            raise IdempotencyKeyTaken() from None
        return record

    @staticmethod
    def remember(record: IdempotencyRecord, answer: dict[str, Any]) -> None:
        """Store the answer a claimed key replays (written when the transaction commits)."""
        record.response = dict(answer)
