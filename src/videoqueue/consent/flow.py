"""The Seedance face-media consent flow (spec §11.2).

A face-eligible model whose media shows a face answers `409 needs_consent` until the request
carries `consents.seedance`; the attestation is then remembered per account by the media's
SHA-256, so the same bytes are not asked about again until the account revokes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from videoqueue.clock import Clock
from videoqueue.consent import store
from videoqueue.consent.models import ConsentRecord
from videoqueue.errors import VideoqueueError
from videoqueue.media.checks import MediaFacts
from videoqueue.media.faces import FACE_ROLES

CONSENT_FLOW = "seedance"
CONSENT_VERSION = "v2.0"
DOCS_URL = "https://docs.venice.ai/guides/media/seedance-face-consent"
ROLE_ORDER = tuple(FACE_ROLES.values())
POLICY_TEXT = "\n".join(
    (
        "I attest that every person whose face or likeness appears in this media is me, or has "
        "given me explicit legal consent to use it; this attestation covers every face in each "
        "image.",
        "I own the media I am uploading, or I have the right to use it for this purpose.",
        "I accept the Terms of Service and the Privacy Policy, and I understand that breaking them "
        "may lead to suspension of my account and to legal liability.",
        "This server keeps no content beyond the job: its media is deleted with the job, and only "
        "a fingerprint (SHA-256) of each attested file is kept, to remember this consent.",
    )
)


class NeedsConsent(VideoqueueError):
    """Seedance consent is required for this request."""

    status = 409
    code = "needs_consent"

    def __init__(self, roles: Sequence[str]) -> None:
        super().__init__()
        self.roles = [r for r in ROLE_ORDER if r in set(roles)]

    def body(self) -> dict[str, Any]:
        return {
            "error": {"code": self.code, "message": self.message},
            "consent_flow": CONSENT_FLOW,
            "face_media_roles": self.roles,
            "consent": {"consent_version": CONSENT_VERSION, "policy_text": POLICY_TEXT},
            "docs_url": DOCS_URL,
        }


@dataclass(frozen=True)
class FaceMedia:
    sha256: str
    role: str


def face_media(facts: Sequence[MediaFacts]) -> list[FaceMedia]:
    """The request's face-bearing files, once per content hash, in request order."""
    found: dict[str, FaceMedia] = {}
    for fact in facts:
        if fact.has_face and fact.kind in FACE_ROLES:
            found.setdefault(fact.sha256, FaceMedia(fact.sha256, FACE_ROLES[fact.kind]))
    return list(found.values())


def require_consent(
    session: Session,
    *,
    account_id: str,
    model: str,
    facts: Sequence[MediaFacts],
    consents: Mapping[str, Any] | None,
    clock: Clock,
) -> ConsentRecord | None:
    """Pass if every face in the media is attested (now, or earlier for the same bytes).

    Raises `NeedsConsent` naming the roles of the unattested face media. A request carrying
    `consents.seedance` (already validated: three literal `true`s) records a new attestation
    for those files and returns it.
    """
    faces = face_media(facts)
    if not faces:
        return None
    attested = store.attested_hashes(
        session,
        account_id=account_id,
        flow=CONSENT_FLOW,
        version=CONSENT_VERSION,
        hashes=[f.sha256 for f in faces],
    )
    pending = [f for f in faces if f.sha256 not in attested]
    if not pending:
        return None
    if not (consents and CONSENT_FLOW in consents):
        raise NeedsConsent([f.role for f in pending])
    return store.record_consent(
        session,
        account_id=account_id,
        flow=CONSENT_FLOW,
        version=CONSENT_VERSION,
        model=model,
        media=[(f.sha256, f.role) for f in pending],
        clock=clock,
    )
