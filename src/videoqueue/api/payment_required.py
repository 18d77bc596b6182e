"""The `402 Payment Required` answers of spec §2.4 and §2.5, each with a `PAYMENT-REQUIRED` header.

(a) `authentication_required`: no credentials at all, how to get a key or pay with a wallet.
(b) `insufficient_credit`: a signed-in wallet below the minimum balance, how to top up.
`top_up_requirements`: `POST /x402/top-up` without a payment, the rails at the minimum amount.
(c), a wallet or key with too little for one job, is the ledger's `InsufficientBalance`.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from x402.http import encode_payment_required_header
from x402.schemas import PaymentRequired as PaymentRequiredHeader
from x402.schemas import PaymentRequirements, ResourceInfo

from videoqueue.api.context import AppContext
from videoqueue.auth.siwx import SOLANA_MAINNET_REFERENCE
from videoqueue.billing.x402 import SOLANA_MAINNET, USDC_DECIMALS, Rail, TopUpTerms
from videoqueue.catalog.pricing import micros_to_usd
from videoqueue.clock import iso_z
from videoqueue.errors import VideoqueueError

DESCRIPTION = "videoqueue API"
STATEMENT = "Sign in to videoqueue"
CHALLENGE_LIFETIME = timedelta(minutes=5)
TOP_UP_ROUTE = "POST /api/v1/x402/top-up"


class PaymentRequired(VideoqueueError):
    """Payment required"""

    status = 402

    def __init__(self, body: dict[str, Any], header: PaymentRequiredHeader) -> None:
        super().__init__(str(body.get("error") or self.__doc__))
        self._body = body
        self._header = encode_payment_required_header(header)

    def body(self) -> dict[str, Any]:
        return self._body

    def headers(self) -> dict[str, str]:
        return {"PAYMENT-REQUIRED": self._header}


def _resource(ctx: AppContext, path: str) -> ResourceInfo:
    return ResourceInfo(
        url=ctx.settings.resolved_public_base_url + path,
        description=DESCRIPTION,
        mime_type="application/json",
    )


def siwx_challenge(ctx: AppContext, path: str) -> dict[str, Any]:
    """A fresh sign-in challenge for the resource; clients may use its nonce or their own."""
    now = ctx.clock.now()
    evm = [f"eip155:{chain}" for chain in ctx.sign_in.evm_chain_ids]
    chains = [{"chainId": chain, "type": kind} for chain in evm for kind in ("eip191", "eip1271")]
    chains.append({"chainId": f"solana:{SOLANA_MAINNET_REFERENCE}", "type": "ed25519"})
    return {
        "info": {
            "domain": ctx.sign_in.domains[0],
            "uri": ctx.settings.resolved_public_base_url + path,
            "version": "1",
            "nonce": secrets.token_hex(8),
            "issuedAt": iso_z(now),
            "expirationTime": iso_z(now + CHALLENGE_LIFETIME),
            "statement": STATEMENT,
        },
        "supportedChains": chains,
    }


def _accepts(terms: TopUpTerms, micros: int, *, bare_solana: bool) -> list[PaymentRequirements]:
    """One requirement per rail; inference challenges name Solana `solana`, as Venice's do."""

    def network(rail: Rail) -> str | None:
        return "solana" if bare_solana and rail.network == SOLANA_MAINNET else None

    return [rail.requirement(micros, network=network(rail)) for rail in terms.rails]


def authentication_required(ctx: AppContext, path: str, *, priced: bool = True) -> PaymentRequired:
    """(a): how to authenticate. `priced` lists the rails at the suggested top-up (inference
    routes); the wallet-only routes list none."""
    terms = ctx.top_up_terms
    accepts = _accepts(terms, terms.suggested_micros, bare_solana=True) if priced else []
    resource = _resource(ctx, path)
    extensions = {"sign-in-with-x": siwx_challenge(ctx, path)}
    base = ctx.settings.resolved_public_base_url
    body: dict[str, Any] = {
        "x402Version": 2,
        "error": "Authentication required",
        "resource": resource.model_dump(by_alias=True, exclude_none=True),
        "accepts": [a.model_dump(by_alias=True) for a in accepts],
        "extensions": extensions,
        "authOptions": {
            "apiKey": {
                "header": "Authorization: Bearer YOUR_API_KEY",
                "getKey": "videoqueue keys create (ask the server's operator)",
                "docs": f"{base}/docs",
            },
            "x402Wallet": {
                "header": "SIGN-IN-WITH-X",
                "legacyHeader": "X-Sign-In-With-X",
                "topUp": TOP_UP_ROUTE,
                "docs": f"{base}/docs#/x402",
            },
        },
    }
    header = PaymentRequiredHeader(
        error=body["error"], resource=resource, accepts=accepts, extensions=extensions
    )
    return PaymentRequired(body, header)


def insufficient_credit(ctx: AppContext, path: str, balance_micros: int) -> PaymentRequired:
    """(b): a signed-in wallet holds less than the minimum balance; how to top it up."""
    terms = ctx.top_up_terms
    evm = next((rail for rail in terms.rails if rail.is_evm), None)
    minimum_top_up = micros_to_usd(terms.minimum_micros)
    body: dict[str, Any] = {
        "error": "Payment required",
        "code": "PAYMENT_REQUIRED",
        "reason": "insufficient_balance",
        "message": "Insufficient x402 balance",
        "currentBalanceUsd": micros_to_usd(balance_micros),
        "minimumBalanceUsd": ctx.settings.wallet_minimum_balance_usd,
        "description": DESCRIPTION,
        "suggestedTopUpUsd": micros_to_usd(terms.suggested_micros),
        "minimumTopUpUsd": minimum_top_up,
        "supportedTokens": ["USDC"],
        "supportedChains": [rail.name for rail in terms.rails],
        "topUpInstructions": {
            "step1": f"{TOP_UP_ROUTE} with no payment header to get payment requirements",
            "step2": "Choose a payment option from accepts and sign a USDC transfer "
            "authorization using the x402 SDK (createPaymentHeader)",
            "step3": f"{TOP_UP_ROUTE} with the signed PAYMENT-SIGNATURE header",
            "receiverWallet": evm.pay_to if evm else "",
            "tokenAddress": evm.asset if evm else "",
            "tokenDecimals": USDC_DECIMALS,
            "network": evm.network if evm else "",
            "minimumAmountUsd": minimum_top_up,
        },
        "siwxChallenge": siwx_challenge(ctx, path),
    }
    header = PaymentRequiredHeader(
        error=body["message"],
        resource=_resource(ctx, path),
        accepts=_accepts(terms, terms.suggested_micros, bare_solana=True),
        extensions={"sign-in-with-x": body["siwxChallenge"]},
    )
    return PaymentRequired(body, header)


def top_up_requirements(ctx: AppContext, path: str, terms: TopUpTerms) -> PaymentRequired:
    """The top-up route's 402: every rail at the minimum top-up, networks in CAIP-2 form."""
    accepts = _accepts(terms, terms.minimum_micros, bare_solana=False)
    body: dict[str, Any] = {
        "x402Version": 2,
        "accepts": [a.model_dump(by_alias=True) for a in accepts],
    }
    header = PaymentRequiredHeader(
        error="Payment required", resource=_resource(ctx, path), accepts=accepts
    )
    return PaymentRequired(body, header)
