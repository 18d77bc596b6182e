"""`Idempotency-Key` on queue: the same key and body within the TTL get the answer the first
request got, and are charged once.

The key is looked up, then stored with its answer, in the same transaction as the job and
its charge, after the account row is locked: a racing request of the same account waits for
the lock and then finds the answer. The unique (account, key) constraint stays the backstop:
a request whose insert still fails rolls back, its charge with it, and is answered from the
winner's record.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from videoqueue.clock import Clock
from videoqueue.errors import VideoqueueError
from videoqueue.jobs import store


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
class IdempotencyKey:
    """A queue request's `Idempotency-Key` and the fingerprint of the body it came with."""

    key: str
    fingerprint: str


def replay(
    session: Session, account_id: str, idem: IdempotencyKey, ttl: timedelta, clock: Clock
) -> dict[str, Any] | None:
    """The answer stored for this key, or None if it is new (or expired).

    Raises `IdempotencyKeyReused` if the key was used with another body.
    """
    found = store.find_idempotency_record(
        session, account_id=account_id, key=idem.key, since=clock.now() - ttl
    )
    if found is None:
        return None
    request_hash, answer = found
    if request_hash != idem.fingerprint:
        raise IdempotencyKeyReused()
    return dict(answer)


def record(
    session: Session,
    account_id: str,
    idem: IdempotencyKey,
    ttl: timedelta,
    clock: Clock,
    answer: dict[str, Any],
) -> None:
    """Take the key with the answer it replays, in the caller's transaction.

    Raises `IdempotencyKeyTaken` if another request holds it: the caller's transaction must
    roll back and answer with `replay` in a new one.
    """
    now = clock.now()
    try:
        store.insert_idempotency_record(
            session,
            account_id=account_id,
            key=idem.key,
            request_hash=idem.fingerprint,
            response=answer,
            now=now,
            expired_before=now - ttl,
        )
    except IntegrityError:
        raise IdempotencyKeyTaken() from None
