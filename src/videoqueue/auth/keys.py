"""API keys: made once, shown once, stored as SHA-256 hashes, looked up by hash."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from videoqueue.auth.models import ApiKey, KeyKind
from videoqueue.clock import Clock
from videoqueue.errors import VideoqueueError

KEY_PREFIX = "vq_"


class AuthenticationFailed(VideoqueueError):
    """Authentication failed"""

    status = 401


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(session: Session, *, account_id: str, kind: KeyKind, clock: Clock,
               name: str = "", expires_at: datetime | None = None) -> tuple[ApiKey, str]:
    """A new key for the account; returns the row and the secret (never stored)."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        account_id=account_id, kind=kind, name=name, key_hash=hash_key(secret),
        last_chars=secret[-6:], created_at=clock.now(), expires_at=expires_at,
    )
    session.add(key)
    session.flush()
    return key, secret


def find_active_key(session: Session, secret: str, clock: Clock) -> ApiKey:
    """The live key with this secret. Raises `AuthenticationFailed`."""
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(secret)))
    now = clock.now()
    if key is None or key.revoked_at is not None or (key.expires_at and key.expires_at <= now):
        raise AuthenticationFailed()
    return key
