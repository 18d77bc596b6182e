"""Input links: signed, expiring URLs to a running job's stored inputs, which an engine that
forwards the job sends upstream in place of `data:` URLs (the `venice` engine's `media=urls`).

A token is a link token (`delivery.tokens`) of purpose `INPUT_LINK`, signed with the download
links' secret; its link id is the first 16 bytes of the SHA-256 of the input's storage key. No
row is kept: the job decides, so a link serves only while its job is queued or running, one
of that job's own inputs, and never past its expiry.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from videoqueue.delivery.links import LinkExpired, LinkNotFound, MediaUnavailable
from videoqueue.delivery.tokens import INPUT_LINK, LINK_ID_BYTES, LinkClaims, LinkSigner
from videoqueue.jobs.models import Job
from videoqueue.jobs.states import PENDING

INPUT_READ_PATH = "/v1/share/input"
"""Where videoqueue serves an input link: `{public_base_url}{INPUT_READ_PATH}/<token>`."""


def _link_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[: 2 * LINK_ID_BYTES]


@dataclass(frozen=True)
class InputLinks:
    """Signs and verifies links to jobs' inputs at `public_base_url`, which the upstream
    a job is forwarded to must reach."""

    signer: LinkSigner
    public_base_url: str

    @classmethod
    def with_secret(cls, secret: bytes, public_base_url: str) -> InputLinks:
        return cls(LinkSigner(secret, INPUT_LINK), public_base_url)

    def url(self, job_id: str, key: str, *, expires_at: datetime) -> str:
        """A link to `job_id`'s input stored at `key`, valid until `expires_at` at most."""
        claims = LinkClaims(link_id=_link_id(key), job_id=job_id, expires_at=expires_at)
        return f"{self.public_base_url}{INPUT_READ_PATH}/{self.signer.sign(claims)}"


def admit_input(session: Session, claims: LinkClaims, *, now: datetime) -> str:
    """The storage key a verified input link serves now, or the `LinkError` saying why not:
    410 past its expiry, 404 once its job has ended (or for an input the job does not have)."""
    if now >= claims.expires_at:
        raise LinkExpired()
    job = session.get(Job, claims.job_id)
    if job is None or job.state not in PENDING:
        raise MediaUnavailable()
    for key in job.job_spec.media.files():
        if _link_id(key) == claims.link_id:
            return key
    raise LinkNotFound()
