"""Where a webhook may be sent: the media URLs' SSRF guard, applied when a job is queued with
a `webhook_url` and again, on the address actually connected to, at every attempt."""

from __future__ import annotations

import httpx

from videoqueue.errors import VideoqueueError
from videoqueue.media.errors import MediaError
from videoqueue.media.fetch import (
    FetchPolicy,
    IPAddress,
    Resolver,
    checked_addresses,
    resolve_addresses,
)

FIELD = "webhook_url"


class WebhookUrlRefused(VideoqueueError):
    """This server does not send webhooks to that address"""

    status = 400
    code = "WEBHOOK_URL_NOT_ALLOWED"


def webhook_addresses(
    url: str, policy: FetchPolicy, resolve: Resolver = resolve_addresses
) -> list[IPAddress]:
    """The addresses `url`'s host resolves to, every one allowed by `policy`; else
    `WebhookUrlRefused` (a host that does not resolve included)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        raise WebhookUrlRefused(f"{FIELD}: not a valid URL") from None
    try:
        return checked_addresses(parsed, FIELD, policy, resolve)
    except MediaError as exc:
        raise WebhookUrlRefused(exc.message) from None
