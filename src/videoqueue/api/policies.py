"""The operator's settings turned into the value objects lower layers take (built once)."""

from __future__ import annotations

from datetime import timedelta

from videoqueue.delivery.links import LinkPolicy
from videoqueue.jobs.service import JobTerms
from videoqueue.media.fetch import FetchPolicy
from videoqueue.settings import Settings


def fetch_policy(settings: Settings) -> FetchPolicy:
    """Where and how media URLs may be fetched."""
    return FetchPolicy(
        allow_private_networks=settings.media_allow_private_networks,
        allowed_networks=tuple(settings.media_allowed_networks),
        connect_timeout_s=settings.media_fetch_connect_timeout_seconds,
        read_timeout_s=settings.media_fetch_read_timeout_seconds,
        total_timeout_s=settings.media_fetch_total_timeout_seconds,
        max_redirects=settings.media_fetch_max_redirects,
    )


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
    )
