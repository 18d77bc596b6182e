"""How webhooks are sent: a value built once from the settings and handed to each sender."""

from __future__ import annotations

from dataclasses import dataclass

from videoqueue.media.fetch import FetchPolicy


@dataclass(frozen=True)
class WebhookTerms:
    """Where webhooks may go (the media URLs' guard) and how hard each is tried."""

    policy: FetchPolicy
    timeout_s: float
    lease_s: float
    """How long a sender holds a delivery; another sends it once this lapses."""
    retry_delays_s: tuple[float, ...]
    """The pause before each retry; after the last one a delivery is given up."""
    poll_s: float
