"""Who is calling: the account behind a Bearer key, or a wallet signed in with SIGN-IN-WITH-X."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from videoqueue.api.context import AppContext, context
from videoqueue.api.payment_required import authentication_required
from videoqueue.api.wallet_auth import admit_wallet, refuse_payment_header, sign_in_header
from videoqueue.auth.keys import AuthenticationFailed, find_active_key, record_use, use_is_stale
from videoqueue.auth.models import KeyKind, ModelPrivacy
from videoqueue.billing.ledger import KeyBudget
from videoqueue.jobs.service import Payer


@dataclass(frozen=True)
class Caller:
    """An authenticated account: through an API key (`key_id`) or a wallet (`wallet_address`)."""

    account_id: str
    key_id: str | None = None
    key_kind: KeyKind | None = None
    wallet_address: str | None = None
    key_budget: KeyBudget | None = None
    """What the key may spend (read with the key, so the charge need not read it again)."""
    model_privacy: ModelPrivacy = ModelPrivacy.ALL
    """The key's `modelPrivacy` (a wallet may call every model)."""

    @property
    def payer(self) -> Payer:
        return Payer(self.account_id, self.key_budget)


def bearer_secret(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    return secret.strip()


@dataclass(frozen=True)
class KeySecret:
    """A Bearer key's secret, not yet looked up: the lookup can then share a transaction
    with the request's other work (`rate_limited` counts the request in the same one)."""

    secret: str


Credentials = Caller | KeySecret
"""Who a request says it is: a wallet already signed in, or a key to look up."""


def _key_caller(ctx: AppContext, session: Session, secret: str) -> tuple[Caller, str | None]:
    """The caller behind the key, and the key's id if its last use is stale (for
    `record_use`)."""
    key = find_active_key(session, secret, ctx.clock)
    caller = Caller(
        account_id=key.account_id,
        key_id=key.id,
        key_kind=key.kind,
        key_budget=KeyBudget(key.id, key.usd_limit_micros, key.limit_period),
        model_privacy=key.model_privacy,
    )
    return caller, key.id if use_is_stale(key, ctx.clock.now()) else None


def resolve_in(ctx: AppContext, session: Session, credentials: Credentials) -> Caller:
    """The caller, its key looked up in `session`, a write transaction (its use is noted)."""
    if isinstance(credentials, Caller):
        return credentials
    caller, stale = _key_caller(ctx, session, credentials.secret)
    if stale is not None:
        record_use(session, stale, ctx.clock.now())
    return caller


def resolve(ctx: AppContext, credentials: Credentials) -> Caller:
    """The caller, its key looked up in a read, so key checks never queue for SQLite's write
    lock; the use is written at most once per resolution."""
    if isinstance(credentials, Caller):
        return credentials
    with ctx.db.read() as session:
        caller, stale = _key_caller(ctx, session, credentials.secret)
    if stale is not None:
        with ctx.db.transaction() as session:
            record_use(session, stale, ctx.clock.now())
    return caller


async def caller_credentials(request: Request) -> Credentials:
    """Who calls an inference route: a wallet (`SIGN-IN-WITH-X`, which wins over a key) or
    a Bearer key. No credentials at all: 402 with the x402 discovery body; a malformed
    key: 401 (an unknown one is found out by `resolve`)."""
    refuse_payment_header(request)
    header = sign_in_header(request)
    if header is not None:
        wallet = await admit_wallet(request, header)
        return Caller(account_id=wallet.account_id, wallet_address=wallet.address)
    if "authorization" not in request.headers:
        raise authentication_required(context(request), request.url.path)
    return api_key_credentials(request)


def api_key_credentials(request: Request) -> KeySecret:
    """The Bearer key of an account route (which takes keys, never wallets). No credentials
    at all: 402 with the x402 discovery body; a malformed key or a wallet alone: 401."""
    if "authorization" not in request.headers and sign_in_header(request) is None:
        raise authentication_required(context(request), request.url.path)
    secret = bearer_secret(request)
    if secret is None:
        raise AuthenticationFailed()
    return KeySecret(secret)


async def require_caller(request: Request) -> Caller:
    """The caller of an inference route (`caller_credentials`), its key looked up."""
    return await run_in_threadpool(resolve, context(request), await caller_credentials(request))


class AdminKeyRequired(AuthenticationFailed):
    """Admin API key required"""


async def require_api_key(request: Request) -> Caller:
    """The caller behind a Bearer API key (`api_key_credentials`), looked up."""
    return await run_in_threadpool(resolve, context(request), api_key_credentials(request))


KeyCaller = Annotated[Caller, Depends(require_api_key)]


async def require_admin(caller: KeyCaller) -> Caller:
    """The caller behind an ADMIN key, or 401 `{"error": "Admin API key required"}`."""
    if caller.key_kind != KeyKind.ADMIN:
        raise AdminKeyRequired()
    return caller


AdminCaller = Annotated[Caller, Depends(require_admin)]
