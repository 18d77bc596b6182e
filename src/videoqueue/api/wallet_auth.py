"""Wallet callers (spec §2.1, §2.3): sign-in with `SIGN-IN-WITH-X`, the minimum-balance gate,
the cap on requests in flight per wallet, and the `X-Balance-Remaining` response header.

A verified header's nonce is consumed (and the wallet's account made, on first sign-in) in its
own committed transaction, before anything else can fail: a header is never usable twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from videoqueue.api.context import AppContext, context
from videoqueue.api.payment_required import authentication_required, insufficient_credit
from videoqueue.auth.nonces import NonceReused, consume_nonce
from videoqueue.auth.siwx import (
    SIGN_IN_HEADERS,
    ContractWalletVerifier,
    SignInRejected,
    verify_sign_in,
)
from videoqueue.billing.facilitator import Facilitator
from videoqueue.billing.models import Account, usd_text, usd_to_micros
from videoqueue.billing.wallets import acquire_request_slot, release_request_slot, wallet_account
from videoqueue.billing.x402 import PAYMENT_HEADERS
from videoqueue.errors import VideoqueueError

ACCOUNT_STATE = "wallet_account_id"
SLOT_STATE = "wallet_slot_id"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WalletServices:
    """What the wallet routes need beyond the settings: who verifies and settles payments, and
    who vouches for contract wallets (EIP-1271; none by default, as that needs a chain RPC)."""

    facilitator: Facilitator
    contract_wallets: ContractWalletVerifier | None = None


def wallet_services(request: Request) -> WalletServices:
    services = request.app.state.wallets
    assert isinstance(services, WalletServices)
    return services


@dataclass(frozen=True)
class Wallet:
    """A signed-in wallet: its account, its normalised address and its balance at sign-in."""

    account_id: str
    address: str
    balance_micros: int


class PaymentHeaderNotAccepted(VideoqueueError):
    """Payment headers are only accepted by POST /api/v1/x402/top-up; sign in with SIGN-IN-WITH-X to spend credit"""  # noqa: E501

    status = 400
    code = "PAYMENT_HEADER_NOT_ACCEPTED"


class InvalidSignIn(VideoqueueError):
    """Invalid Sign-in-with-x signature"""

    status = 401


def sign_in_header(request: Request) -> str | None:
    return next((v for name in SIGN_IN_HEADERS if (v := request.headers.get(name))), None)


def payment_header(request: Request) -> str | None:
    return next((v for name in PAYMENT_HEADERS if (v := request.headers.get(name))), None)


def _sign_in(ctx: AppContext, services: WalletServices, header: str) -> Wallet:
    signed = verify_sign_in(header, ctx.sign_in, ctx.clock.now())
    with ctx.db.transaction() as session:
        consume_nonce(
            session,
            wallet_address=signed.address,
            nonce=signed.nonce,
            keep_until=signed.nonce_expires_at,
            clock=ctx.clock,
        )
        account = wallet_account(session, signed.address, ctx.clock)
        return Wallet(
            account_id=account.id, address=signed.address, balance_micros=account.balance_micros
        )


async def sign_in(request: Request, header: str) -> Wallet:
    """The wallet behind a `SIGN-IN-WITH-X` value. Raises `SignInRejected` or `NonceReused`."""
    return await run_in_threadpool(_sign_in, context(request), wallet_services(request), header)


def _acquire_slot(ctx: AppContext, account_id: str) -> str:
    with ctx.db.transaction() as session:
        return acquire_request_slot(
            session,
            account_id=account_id,
            limit=ctx.settings.wallet_max_concurrent_requests,
            ttl_seconds=ctx.settings.wallet_request_slot_seconds,
            clock=ctx.clock,
        )


async def admit_wallet(request: Request, header: str) -> Wallet:
    """A wallet for an inference route: signed in, holding the minimum balance (else 402 (b)),
    and under its cap of requests in flight (else 429). Its slot is freed by `WalletRequests`."""
    ctx = context(request)
    wallet = await sign_in(request, header)
    if wallet.balance_micros < usd_to_micros(ctx.settings.wallet_minimum_balance_usd):
        raise insufficient_credit(ctx, request.url.path, wallet.balance_micros)
    request.state.wallet_slot_id = await run_in_threadpool(_acquire_slot, ctx, wallet.account_id)
    request.state.wallet_account_id = wallet.account_id
    return wallet


def refuse_payment_header(request: Request) -> None:
    """Inference routes spend credit; paying happens only at the top-up route (400 otherwise)."""
    if payment_header(request) is not None:
        raise PaymentHeaderNotAccepted()


async def require_wallet(request: Request) -> Wallet:
    """The signed-in wallet of a wallet-only route (`/x402/balance`, `/x402/transactions`):
    402 (a) without the header, a plain 401 for any bad header."""
    header = sign_in_header(request)
    if header is None:
        raise authentication_required(context(request), request.url.path, priced=False)
    try:
        return await sign_in(request, header)
    except (SignInRejected, NonceReused):
        raise InvalidSignIn() from None


def _release(ctx: AppContext, slot_id: str) -> None:
    with ctx.db.transaction() as session:
        release_request_slot(session, slot_id)


def _balance(ctx: AppContext, account_id: str) -> int:
    with ctx.db.transaction() as session:
        account = session.get(Account, account_id)
        return account.balance_micros if account is not None else 0


class WalletRequests:
    """On a wallet's inference request: adds `X-Balance-Remaining` (USD after the request) to
    the response and frees the request's concurrency slot once the response has ended."""

    def __init__(self, app: ASGIApp, context: AppContext) -> None:
        self.app = app
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def send_with_balance(message: Message) -> None:
            account_id = state.get(ACCOUNT_STATE)
            if message["type"] == "http.response.start" and account_id:
                try:
                    micros = await run_in_threadpool(_balance, self.context, account_id)
                except Exception:
                    # The answer is already decided (perhaps a job was created): a header
                    # must never turn it into an error.
                    log.exception("X-Balance-Remaining left out for account %s", account_id)
                else:
                    MutableHeaders(scope=message).append("X-Balance-Remaining", usd_text(micros, 6))
            await send(message)

        try:
            await self.app(scope, receive, send_with_balance)
        finally:
            slot_id = state.get(SLOT_STATE)
            if slot_id:
                # Even when the client went away and the request was cancelled.
                with anyio.CancelScope(shield=True):
                    await run_in_threadpool(_release, self.context, slot_id)
