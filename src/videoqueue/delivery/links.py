"""Issuing delivery links, admitting each GET of one, and revoking them.

Every GET is decided in one transaction with the link's row locked, so API processes that
share the database agree on revocation, expiry, the fetch cap and the burst window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from videoqueue.delivery import store
from videoqueue.delivery.models import DeliveryLink
from videoqueue.delivery.tokens import InvalidToken, LinkClaims, LinkSigner
from videoqueue.errors import VideoqueueError
from videoqueue.jobs.models import Job
from videoqueue.jobs.states import PENDING, JobState

PRIVATE_HEADERS = {"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"}
"""On every answer at a link: it may sit in logs and caches on the way, so no shared cache
keeps the video and no page it is opened from is told the link."""


class LinkError(VideoqueueError):
    """Download link not found."""

    status = 404
    code = "LINK_NOT_FOUND"

    def headers(self) -> dict[str, str]:
        return dict(PRIVATE_HEADERS)


class LinkNotFound(LinkError):
    """Download link not found."""


class MediaNotReady(LinkError):
    """The video is not ready yet. Poll /video/retrieve until its status is COMPLETED, then fetch this link."""  # noqa: E501

    code = "MEDIA_NOT_READY"


class MediaUnavailable(LinkError):
    """Media could not be found. Request may be invalid, expired, or deleted."""

    code = "MEDIA_NOT_FOUND"


class LinkExpired(LinkError):
    """This download link has expired."""

    status = 410
    code = "LINK_EXPIRED"


class LinkRevoked(LinkError):
    """This download link has been revoked."""

    status = 410
    code = "LINK_REVOKED"


class LinkUsedUp(LinkError):
    """This download link has been used the maximum number of times."""

    status = 410
    code = "LINK_USED_UP"


class MediaDeleted(LinkError):
    """The video behind this download link has been deleted."""

    status = 410
    code = "MEDIA_DELETED"


class LinkThrottled(LinkError):
    """Too many requests for this download link. Please wait and try again."""

    status = 429
    code = "RATE_LIMIT_EXCEEDED"

    def __init__(self, retry_after_s: int) -> None:
        super().__init__()
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {**super().headers(), "Retry-After": str(self.retry_after_s)}


@dataclass(frozen=True)
class LinkPolicy:
    """How long a link lives and how hard it may be used."""

    ttl_seconds: float = 86_400.0
    max_fetches: int = 5
    burst: int = 3
    burst_seconds: float = 10.0


SHARE_READ_PATH = "/v1/share/read"
"""Where videoqueue serves a download link: `{public_base_url}{SHARE_READ_PATH}/<token>`."""


@dataclass(frozen=True)
class LinkTerms:
    """What a new link is made of: the signer, the policy and the base URL clients reach."""

    signer: LinkSigner
    policy: LinkPolicy
    public_base_url: str

    def issue(self, session: Session, *, job_id: str, now: datetime) -> str:
        """Create the job's link in the caller's transaction; returns its `download_url`."""
        _, token = issue_link(session, self.signer, self.policy, job_id=job_id, now=now)
        return f"{self.public_base_url}{SHARE_READ_PATH}/{token}"


@dataclass(frozen=True)
class Fetch:
    """A GET the link admits: serve `output_key`, or say "not ready" when it is None."""

    job_id: str
    output_key: str | None
    delete_after_download: bool


def issue_link(
    session: Session, signer: LinkSigner, policy: LinkPolicy, *, job_id: str, now: datetime
) -> tuple[LinkClaims, str]:
    """Create a link to `job_id`'s output in the caller's transaction; returns it and its token."""
    claims, token = signer.issue(job_id, now + timedelta(seconds=policy.ttl_seconds))
    store.insert_link(session, claims, max_fetches=policy.max_fetches, now=now)
    return claims, token


def verify_token(signer: LinkSigner, token: str) -> LinkClaims:
    """The token's claims. Raises `LinkNotFound` for anything this server did not sign."""
    try:
        return signer.verify(token)
    except InvalidToken:
        raise LinkNotFound() from None


def _locked_link(session: Session, claims: LinkClaims) -> DeliveryLink:
    link = store.get_link_for_update(session, claims.link_id)
    if link is None or link.job_id != claims.job_id or link.expires_at != claims.expires_at:
        raise LinkNotFound()
    return link


def _count_in_window(link: DeliveryLink, policy: LinkPolicy, now: datetime) -> None:
    window = timedelta(seconds=policy.burst_seconds)
    if link.window_started_at is None or now - link.window_started_at >= window:
        link.window_started_at = now
        link.window_count = 0
    if link.window_count >= policy.burst:
        wait = (link.window_started_at + window - now).total_seconds()
        raise LinkThrottled(max(1, math.ceil(wait)))
    link.window_count += 1


def admit_fetch(
    session: Session,
    claims: LinkClaims,
    policy: LinkPolicy,
    *,
    now: datetime,
    serves_bytes: bool = True,
) -> Fetch:
    """Count one GET (or HEAD, `serves_bytes=False`) of a verified link, or raise why it is
    refused.

    Every admitted request counts in the burst window; only a GET that serves the video counts
    against `max_fetches`, so a client polling too early is throttled but not used up.
    """
    if now >= claims.expires_at:
        raise LinkExpired()
    link = _locked_link(session, claims)
    if link.revoked_at is not None:
        raise LinkRevoked()
    if link.fetch_count >= link.max_fetches:
        raise LinkUsedUp()
    job = session.get(Job, link.job_id)
    if job is None:
        raise LinkNotFound()
    if job.state in (JobState.DELETED, JobState.EXPIRED):
        raise MediaDeleted()
    _count_in_window(link, policy, now)
    if job.state in PENDING:
        return Fetch(job_id=job.id, output_key=None, delete_after_download=False)
    if job.state != JobState.COMPLETED or job.output_key is None:
        raise MediaUnavailable()
    if serves_bytes:
        link.fetch_count += 1
        link.last_fetch_at = now
    return Fetch(
        job_id=job.id, output_key=job.output_key, delete_after_download=link.delete_after_download
    )


def revoke_link(session: Session, claims: LinkClaims, *, now: datetime) -> DeliveryLink:
    """Revoke a verified link (again is fine). Raises `LinkNotFound` for an unknown one."""
    link = _locked_link(session, claims)
    if link.revoked_at is None:
        link.revoked_at = now
    return link
