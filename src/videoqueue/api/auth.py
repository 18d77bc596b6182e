"""Who is calling: the account behind a Bearer key."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from videoqueue.api.context import AppContext, context
from videoqueue.auth.keys import AuthenticationFailed, find_active_key
from videoqueue.auth.models import KeyKind


@dataclass(frozen=True)
class Caller:
    account_id: str
    key_id: str
    key_kind: KeyKind


def bearer_secret(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    return secret.strip()


def _lookup(ctx: AppContext, secret: str) -> Caller:
    with ctx.db.transaction() as session:
        key = find_active_key(session, secret, ctx.clock)
        return Caller(account_id=key.account_id, key_id=key.id, key_kind=key.kind)


async def require_caller(request: Request) -> Caller:
    """The authenticated caller, or 401 `{"error": "Authentication failed"}`."""
    secret = bearer_secret(request)
    if secret is None:
        raise AuthenticationFailed()
    return await run_in_threadpool(_lookup, context(request), secret)
