"""`POST /x402/top-up`, `GET /x402/balance/{wallet}`, `GET /x402/transactions/{wallet}`."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from x402.http import encode_payment_response_header
from x402.schemas import SettleResponse

from videoqueue.api.context import AppContext, context
from videoqueue.api.limits import address_limited
from videoqueue.api.payment_required import top_up_requirements
from videoqueue.api.wallet_auth import Wallet, payment_header, require_wallet, wallet_services
from videoqueue.billing.facilitator import Facilitator
from videoqueue.billing.models import usd_to_micros
from videoqueue.billing.payments import Credit, record_failure, record_settlement, reserve_payment
from videoqueue.billing.wallets import ledger_page, normalize_wallet
from videoqueue.billing.x402 import Payment, TopUpFailed, read_payment
from videoqueue.catalog import issues as iss
from videoqueue.catalog.issues import InvalidParameters
from videoqueue.catalog.pricing import micros_to_usd
from videoqueue.clock import iso_z
from videoqueue.errors import VideoqueueError

router = APIRouter(tags=["x402"])

DEFAULT_PAGE, MAX_PAGE = 50, 100
SignedIn = Annotated[Wallet, Depends(require_wallet)]


class TopUpRateLimited(TopUpFailed):
    """Too many top-up requests from this address; try again later"""

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__("X402_RATE_LIMIT_EXCEEDED", status=429)
        self.retry_after_seconds = retry_after_seconds

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class WalletMismatch(VideoqueueError):
    """You can only access balance for your own wallet"""

    status = 403
    code = "X402_WALLET_MISMATCH"


@router.post(
    "/x402/top-up", dependencies=[Depends(address_limited("x402-top-up", TopUpRateLimited))]
)
async def top_up(request: Request) -> JSONResponse:
    """Add USDC credit to a wallet with an x402 payment.

    Without a payment header: `402` with the accepted payment options (`accepts`, also in the
    `PAYMENT-REQUIRED` header). With `PAYMENT-SIGNATURE` (or `X-PAYMENT`, `X-402-Payment`):
    the base64 x402 v2 PaymentPayload for one option, $5 to $10,000. The paying wallet is
    credited once per payment; the answer carries the settlement in `PAYMENT-RESPONSE`.
    """
    ctx = context(request)
    terms = ctx.top_up_terms
    if not terms.rails:
        raise TopUpFailed(
            "X402_NOT_CONFIGURED", "x402 top-ups are not configured on this server", status=503
        )
    header = payment_header(request)
    if header is None:
        raise top_up_requirements(ctx, request.url.path, terms)
    payment = read_payment(header, terms)
    credit = await run_in_threadpool(_settle, ctx, wallet_services(request).facilitator, payment)
    settlement = SettleResponse(
        success=True,
        network=credit.network,
        payer=credit.wallet_address,
        transaction=credit.transaction,
    )
    return JSONResponse(
        {
            "success": True,
            "data": {
                "walletAddress": credit.wallet_address,
                "amountCredited": micros_to_usd(credit.amount_micros),
                "newBalance": micros_to_usd(credit.new_balance_micros),
                "paymentId": credit.payment_id,
            },
        },
        headers={"PAYMENT-RESPONSE": encode_payment_response_header(settlement)},
    )


def _settle(ctx: AppContext, facilitator: Facilitator, payment: Payment) -> Credit:
    """Reserve the payment, have the facilitator verify and settle it, then credit it."""
    with ctx.db.transaction() as session:
        earlier = reserve_payment(session, payment, ctx.clock)
    if earlier is not None:
        return earlier
    try:
        payer, transaction = _facilitate(facilitator, payment)
    except BaseException as exc:
        with ctx.db.transaction() as session:
            record_failure(
                session, payment_id=payment.payment_id, reason=repr(exc), clock=ctx.clock
            )
        raise
    with ctx.db.transaction() as session:
        return record_settlement(
            session,
            payment_id=payment.payment_id,
            payer=payer,
            transaction=transaction,
            clock=ctx.clock,
        )


def _facilitate(facilitator: Facilitator, payment: Payment) -> tuple[str, str]:
    """(payer, transaction) of a verified and settled payment. Raises `TopUpFailed`."""
    try:
        verified = facilitator.verify(payment.payload, payment.requirements)
    except Exception as exc:
        raise TopUpFailed(
            "X402_FACILITATOR_ERROR",
            "The payment facilitator failed",
            status=500,
            reason=type(exc).__name__,
        ) from exc
    if not verified.is_valid:
        reason = verified.invalid_reason or "invalid"
        if "signature" in reason:
            raise TopUpFailed(
                "X402_INVALID_PAYMENT", "Invalid payment header", reason="signature_mismatch"
            )
        raise TopUpFailed(
            "X402_PAYMENT_VERIFICATION_FAILED", "Payment verification failed", reason=reason
        )
    try:
        settled = facilitator.settle(payment.payload, payment.requirements)
    except httpx.TimeoutException as exc:
        raise TopUpFailed(
            "X402_SETTLEMENT_TIMEOUT",
            "Settlement timed out; the payment may still settle",
            status=504,
        ) from exc
    except Exception as exc:
        raise TopUpFailed(
            "X402_FACILITATOR_ERROR",
            "The payment facilitator failed",
            status=500,
            reason=type(exc).__name__,
        ) from exc
    if not settled.success:
        raise TopUpFailed(
            "X402_SETTLEMENT_FAILED",
            "Payment settlement failed; no funds moved",
            status=402,
            reason=settled.error_reason or "settlement_failed",
        )
    payer = payment.payer or normalize_wallet(settled.payer or verified.payer or "")
    if payer is None:
        raise TopUpFailed("X402_INVALID_PAYMENT_PAYER", "The facilitator named no payer")
    return payer, settled.transaction


def _path_wallet(value: str) -> str:
    address = normalize_wallet(value)
    if address is None:
        raise InvalidParameters(
            [
                iss.Issue(
                    "invalid_string",
                    ("walletAddress",),
                    "Invalid wallet address",
                    {"validation": "regex"},
                )
            ]
        )
    return address


def _own_wallet(wallet: Wallet, requested: str, what: str) -> None:
    if wallet.address != requested:
        raise WalletMismatch(f"You can only access {what} for your own wallet")


@router.get(
    "/x402/balance/{wallet_address}", dependencies=[Depends(address_limited("x402-balance"))]
)
async def balance(wallet_address: str, request: Request, wallet: SignedIn) -> JSONResponse:
    """The wallet's credit in USD. Needs a `SIGN-IN-WITH-X` header signed by that wallet."""
    _own_wallet(wallet, _path_wallet(wallet_address), "balance")
    ctx = context(request)
    minimum = usd_to_micros(ctx.settings.wallet_minimum_balance_usd)
    terms = ctx.top_up_terms
    return JSONResponse(
        {
            "success": True,
            "data": {
                "walletAddress": wallet.address,
                "balanceUsd": micros_to_usd(wallet.balance_micros),
                "canConsume": wallet.balance_micros >= minimum,
                "minimumTopUpUsd": micros_to_usd(terms.minimum_micros),
                "suggestedTopUpUsd": micros_to_usd(terms.suggested_micros),
            },
        }
    )


def _page_number(
    request: Request, name: str, default: int, low: int, high: int | None
) -> int | iss.Issue:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        return iss.Issue(
            "invalid_type",
            (name,),
            "Expected number, received nan",
            {"expected": "number", "received": "nan"},
        )
    if value < low:
        return iss.number_too_small((name,), low)
    if high is not None and value > high:
        return iss.number_too_big((name,), high)
    return value


@router.get(
    "/x402/transactions/{wallet_address}",
    dependencies=[Depends(address_limited("x402-transactions"))],
)
async def transactions(wallet_address: str, request: Request, wallet: SignedIn) -> JSONResponse:
    """The wallet's ledger, newest first: `TOP_UP` (+), `CHARGE` (-), `REFUND` (+).

    `limit` 1 to 100 (default 50), `offset` from 0. Needs a `SIGN-IN-WITH-X` header signed by
    that wallet."""
    requested = _path_wallet(wallet_address)
    limit = _page_number(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
    offset = _page_number(request, "offset", 0, 0, None)
    found = [v for v in (limit, offset) if isinstance(v, iss.Issue)]
    if found:
        raise InvalidParameters(found)
    assert isinstance(limit, int) and isinstance(offset, int)
    _own_wallet(wallet, requested, "transactions")
    data = await run_in_threadpool(_transactions, context(request), wallet, limit, offset)
    return JSONResponse({"success": True, "data": data})


def _transactions(ctx: AppContext, wallet: Wallet, limit: int, offset: int) -> dict[str, Any]:
    with ctx.db.transaction() as session:
        entries, more = ledger_page(
            session, account_id=wallet.account_id, limit=limit, offset=offset
        )
    return {
        "walletAddress": wallet.address,
        "currentBalance": micros_to_usd(wallet.balance_micros),
        "transactions": [
            {
                "id": entry.id,
                "amount": micros_to_usd(entry.amount_micros),
                "balanceAfter": micros_to_usd(entry.balance_after_micros),
                "type": entry.kind.value,
                "createdAt": iso_z(entry.created_at),
                "requestId": entry.job_id,
                "modelId": entry.model,
            }
            for entry in entries
        ],
        "pagination": {"limit": limit, "offset": offset, "hasMore": more},
    }
