"""API keys: made once, shown once, stored as SHA-256 hashes, looked up by hash."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session

from videoqueue.auth.models import ApiKey, KeyKind, ModelPrivacy
from videoqueue.billing.models import LimitPeriod
from videoqueue.clock import Clock
from videoqueue.db.base import table
from videoqueue.errors import VideoqueueError

KEY_PREFIX = "vq_"
LAST_USED_RESOLUTION = timedelta(minutes=1)
"""`last_used_at` is rewritten at most this often, so a busy key is not a write hot spot."""


class AuthenticationFailed(VideoqueueError):
    """Authentication failed"""

    status = 401


class ModelNotAllowed(VideoqueueError):
    """This API key may only use private models"""

    status = 403
    code = "UNAUTHORIZED"


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    session: Session,
    *,
    account_id: str,
    kind: KeyKind,
    clock: Clock,
    name: str = "",
    expires_at: datetime | None = None,
    usd_limit_micros: int | None = None,
    limit_period: LimitPeriod = LimitPeriod.EPOCH,
    model_privacy: ModelPrivacy = ModelPrivacy.ALL,
) -> tuple[ApiKey, str]:
    """A new key for the account; returns the row and the secret (never stored)."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        account_id=account_id,
        kind=kind,
        name=name,
        key_hash=hash_key(secret),
        last_chars=secret[-6:],
        created_at=clock.now(),
        expires_at=expires_at,
        usd_limit_micros=usd_limit_micros,
        limit_period=limit_period,
        model_privacy=model_privacy,
    )
    session.add(key)
    session.flush()
    return key, secret


@dataclass(frozen=True)
class ActiveKey:
    """What a request needs of its live key: whose it is, what it may do, its last use."""

    id: str
    account_id: str
    kind: KeyKind
    usd_limit_micros: int | None
    limit_period: LimitPeriod
    model_privacy: ModelPrivacy
    last_used_at: datetime | None


# Built once, as each statement on the queue path is: building one costs more CPU than
# running it from SQLAlchemy's compiled cache. Plain columns of the table, not the ORM's: every
# inference request runs it, and the ORM's handling of a select cost more than the select.
_KEYS = table(ApiKey)
_KEY_BY_HASH = select(
    _KEYS.c.id,
    _KEYS.c.account_id,
    _KEYS.c.kind,
    _KEYS.c.usd_limit_micros,
    _KEYS.c.limit_period,
    _KEYS.c.model_privacy,
    _KEYS.c.last_used_at,
    _KEYS.c.revoked_at,
    _KEYS.c.expires_at,
).where(_KEYS.c.key_hash == bindparam("key_hash"))


def find_active_key(session: Session, secret: str, clock: Clock) -> ActiveKey:
    """The live key with this secret (a read only). Raises `AuthenticationFailed`."""
    row = session.execute(_KEY_BY_HASH, {"key_hash": hash_key(secret)}).first()
    if row is None or row.revoked_at is not None:
        raise AuthenticationFailed()
    if row.expires_at is not None and row.expires_at <= clock.now():
        raise AuthenticationFailed()
    return ActiveKey(
        id=row.id,
        account_id=row.account_id,
        kind=row.kind,
        usd_limit_micros=row.usd_limit_micros,
        limit_period=row.limit_period,
        model_privacy=row.model_privacy,
        last_used_at=row.last_used_at,
    )


def use_is_stale(key: ActiveKey, now: datetime) -> bool:
    """Whether the key's `last_used_at` is older than its resolution (then `record_use`)."""
    return key.last_used_at is None or key.last_used_at <= now - LAST_USED_RESOLUTION


def record_use(session: Session, key_id: str, now: datetime) -> None:
    """Note that the key was used now (once per resolution, whoever gets there first)."""
    session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at <= now - LAST_USED_RESOLUTION),
        )
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )


def allow_model(privacy: ModelPrivacy, model_privacy: str) -> None:
    """Refuse (403) a key of `privacy` a video model whose privacy is `model_privacy`
    (`private` or `anonymized`): only PRIVATE_ONLY refuses anonymized video models, as
    PRIVATE_TEXT binds text and embedding models alone."""
    if privacy == ModelPrivacy.PRIVATE_ONLY and model_privacy != "private":
        raise ModelNotAllowed()


def find_key(session: Session, reference: str) -> ApiKey | None:
    """A key by its id or by its secret (for the operator's command line)."""
    if reference.startswith(KEY_PREFIX):
        return session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(reference)))
    return session.get(ApiKey, reference)


def list_keys(
    session: Session, *, account_id: str | None = None, include_revoked: bool = False
) -> list[ApiKey]:
    """Keys, oldest first: the account's, or everyone's when `account_id` is None."""
    stmt = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
    if account_id is not None:
        stmt = stmt.where(ApiKey.account_id == account_id)
    if not include_revoked:
        stmt = stmt.where(ApiKey.revoked_at.is_(None))
    return list(session.scalars(stmt))


def revoke_key(
    session: Session, key_id: str, clock: Clock, *, account_id: str | None = None
) -> bool:
    """Revoke a key (of `account_id`, when given). False if there is no such live key."""
    stmt = update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
    if account_id is not None:
        stmt = stmt.where(ApiKey.account_id == account_id)
    result = session.execute(
        stmt.values(revoked_at=clock.now()).execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
