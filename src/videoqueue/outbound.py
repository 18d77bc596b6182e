"""Where this server may connect to on a client's behalf, built once from the settings: the
fetch policy media URLs and webhooks share, and how webhooks are sent. Kept apart from
`api.policies` so that a worker process builds its terms without importing the API."""

from __future__ import annotations

from videoqueue.media.fetch import FetchPolicy
from videoqueue.settings import Settings
from videoqueue.webhooks.terms import WebhookTerms


def fetch_policy(settings: Settings) -> FetchPolicy:
    """Where and how media URLs may be fetched (and webhooks sent)."""
    return FetchPolicy(
        allow_private_networks=settings.media_allow_private_networks,
        allowed_networks=tuple(settings.media_allowed_networks),
        connect_timeout_s=settings.media_fetch_connect_timeout_seconds,
        read_timeout_s=settings.media_fetch_read_timeout_seconds,
        total_timeout_s=settings.media_fetch_total_timeout_seconds,
        max_redirects=settings.media_fetch_max_redirects,
    )


def webhook_terms(settings: Settings) -> WebhookTerms:
    """Where webhooks may be sent (as media URLs may be fetched) and how hard each is tried."""
    return WebhookTerms(
        policy=fetch_policy(settings),
        timeout_s=settings.webhook_timeout_seconds,
        lease_s=settings.webhook_lease_seconds,
        retry_delays_s=tuple(settings.webhook_retry_delays_seconds),
        poll_s=settings.webhook_poll_seconds,
    )
