"""The policy value objects a server runs under, built once from the settings by `create_app`
(as httpx builds `Timeout` and `Limits`) and kept on the app context: the layers below take
these, never the whole settings."""

from __future__ import annotations

from datetime import timedelta

from videoqueue.api.mp4 import FileOffload
from videoqueue.auth.rate_limits import RatePolicies, RatePolicy
from videoqueue.auth.siwx import ContractWalletVerifier, SignInPolicy, domain_host
from videoqueue.billing.models import usd_to_micros
from videoqueue.billing.x402 import SOLANA_MAINNET, SOLANA_USDC, Rail, TopUpTerms
from videoqueue.delivery.links import LinkPolicy
from videoqueue.jobs.service import JobTerms
from videoqueue.settings import Settings

BASE_ALIASES = {"base": "eip155:8453"}
"""Short network names a payment may give instead of CAIP-2 (Venice accepts `base`)."""


def file_offload(settings: Settings) -> FileOffload:
    """Whether the reverse proxy sends stored MP4s, and how it is told."""
    return FileOffload(mode=settings.file_offload, prefix=settings.file_offload_prefix)


def link_policy(settings: Settings) -> LinkPolicy:
    """How long a download link lives and how hard it may be used."""
    return LinkPolicy(
        ttl_seconds=settings.download_link_ttl_seconds,
        max_fetches=settings.download_link_max_fetches,
        burst=settings.download_link_burst,
        burst_seconds=settings.download_link_burst_seconds,
    )


def job_terms(settings: Settings) -> JobTerms:
    """How jobs are accepted and reported."""
    return JobTerms(
        max_attempts=settings.max_attempts,
        idempotency_ttl=timedelta(seconds=settings.idempotency_ttl_seconds),
        content_rules=tuple(settings.content_policy_rules),
        default_average_ms=settings.default_average_execution_ms,
        retention=settings.retention,
    )


def top_up_terms(settings: Settings) -> TopUpTerms:
    """The rails a top-up may pay on, and its bounds."""
    rails: list[Rail] = []
    if settings.x402_pay_to:
        aliases = tuple(k for k, v in BASE_ALIASES.items() if v == settings.x402_network)
        rails.append(
            Rail(
                network=settings.x402_network,
                asset=settings.x402_asset,
                pay_to=settings.x402_pay_to,
                aliases=aliases,
                extra={"name": settings.x402_asset_name, "version": settings.x402_asset_version},
            )
        )
    # Solana payments are checked by a remote facilitator only (the local one reads EVM).
    if settings.x402_solana_pay_to and settings.x402_facilitator_url:
        extra = {"name": "USD Coin", "version": "2"}
        if settings.x402_solana_fee_payer:
            extra["feePayer"] = settings.x402_solana_fee_payer
        rails.append(
            Rail(
                network=SOLANA_MAINNET,
                asset=SOLANA_USDC,
                pay_to=settings.x402_solana_pay_to,
                extra=extra,
                aliases=("solana",),
            )
        )
    return TopUpTerms(
        rails=tuple(rails),
        minimum_micros=usd_to_micros(settings.x402_minimum_top_up_usd),
        maximum_micros=usd_to_micros(settings.x402_maximum_top_up_usd),
        suggested_micros=usd_to_micros(settings.x402_suggested_top_up_usd),
    )


def sign_in_policy(
    settings: Settings, contract_wallets: ContractWalletVerifier | None = None
) -> SignInPolicy:
    """The domains a sign-in message may name: configured, else this server's public host
    (never the request's `Host` header, which the client controls); and its chains."""
    named = settings.siwx_domains or [settings.resolved_public_base_url]
    hosts = tuple(dict.fromkeys(host for d in named if (host := domain_host(d))))
    return SignInPolicy(
        domains=hosts,
        evm_chain_ids=tuple(settings.siwx_evm_chain_ids),
        contract_wallets=contract_wallets,
    )


def rate_policies(settings: Settings) -> RatePolicies:
    """The per-key limits of the video routes, the failed-request budget they share, and the
    per-address limits of the x402 routes."""

    def per_minute(requests: int) -> RatePolicy:
        return RatePolicy(
            requests_per_minute=requests,
            failure_budget=settings.failed_requests_budget,
            failure_window_seconds=settings.failed_requests_window_seconds,
        )

    return RatePolicies(
        queue=per_minute(settings.queue_requests_per_minute),
        retrieve=per_minute(settings.retrieve_requests_per_minute),
        per_address={
            "x402-top-up": settings.x402_top_up_requests_per_minute,
            "x402-balance": settings.x402_balance_requests_per_minute,
            "x402-transactions": settings.x402_transactions_requests_per_minute,
        },
    )
