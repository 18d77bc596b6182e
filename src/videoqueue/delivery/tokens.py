"""Delivery-link tokens: an unguessable link id bound to one job and an expiry, HMAC-signed.

A token is the URL-safe base64 (no padding) of 73 bytes:

    version (1) | link id (16 random bytes) | job id (16, the UUID) | expiry (8, Unix s) | MAC (32)

where MAC = HMAC-SHA256(secret, purpose | the 41 bytes before it). The signature is checked
before the database is touched, so a forged or altered token costs one HMAC; a download
link's revocation and fetch counts live in the `delivery_links` row named by the link id.
The purpose (`DOWNLOAD_LINK`, `INPUT_LINK`) keeps a token of one kind from passing as the other.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

VERSION = 1
LINK_ID_BYTES = 16
MIN_SECRET_BYTES = 16
DOWNLOAD_LINK = b"videoqueue/delivery-link"
"""A private model's `download_url` (`delivery.links`)."""
INPUT_LINK = b"videoqueue/input-link"
"""A running job's input, fetched by the upstream it was forwarded to (`delivery.inputs`)."""
_CLAIMS = struct.Struct(">B16s16sQ")
_MAC_BYTES = hashlib.sha256().digest_size
TOKEN_BYTES = _CLAIMS.size + _MAC_BYTES
TOKEN_CHARS = len(base64.urlsafe_b64encode(bytes(TOKEN_BYTES)).rstrip(b"="))


class InvalidToken(ValueError):
    """The token is malformed, of an unknown version, or its signature does not match."""


@dataclass(frozen=True)
class LinkClaims:
    """What a valid token asserts: this link, for this job's output, until `expires_at`."""

    link_id: str
    job_id: str
    expires_at: datetime


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if len(text) != TOKEN_CHARS or not text.isascii():
        raise InvalidToken("wrong length")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("not base64url") from None
    # The decoder skips stray characters and ignores trailing bits: accept one spelling only.
    if len(raw) != TOKEN_BYTES or _b64encode(raw) != text:
        raise InvalidToken("not canonical base64url")
    return raw


class LinkSigner:
    """Issues and verifies link tokens of one `purpose` with one server secret."""

    def __init__(self, secret: bytes, purpose: bytes = DOWNLOAD_LINK) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"a link secret needs at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret
        self._purpose = purpose

    def _mac(self, claims: bytes) -> bytes:
        return hmac.new(self._secret, self._purpose + claims, hashlib.sha256).digest()

    def issue(self, job_id: str, expires_at: datetime) -> tuple[LinkClaims, str]:
        """A new link for `job_id`'s output, valid until `expires_at` (kept to whole seconds)."""
        expiry = int(expires_at.timestamp())
        claims = LinkClaims(
            link_id=secrets.token_hex(LINK_ID_BYTES),
            job_id=job_id,
            expires_at=datetime.fromtimestamp(expiry, UTC),
        )
        return claims, self.sign(claims)

    def sign(self, claims: LinkClaims) -> str:
        """The token for `claims`."""
        packed = _CLAIMS.pack(
            VERSION,
            bytes.fromhex(claims.link_id),
            uuid.UUID(claims.job_id).bytes,
            int(claims.expires_at.timestamp()),
        )
        return _b64encode(packed + self._mac(packed))

    def verify(self, token: str) -> LinkClaims:
        """The claims of a token this server signed. Raises `InvalidToken` (expiry not checked)."""
        raw = _b64decode(token)
        packed, mac = raw[: _CLAIMS.size], raw[_CLAIMS.size :]
        if not hmac.compare_digest(mac, self._mac(packed)):
            raise InvalidToken("bad signature")
        version, link_id, job_id, expiry = _CLAIMS.unpack(packed)
        if version != VERSION:
            raise InvalidToken(f"unknown token version {version}")
        return LinkClaims(
            link_id=link_id.hex(),
            job_id=str(uuid.UUID(bytes=job_id)),
            expires_at=datetime.fromtimestamp(expiry, UTC),
        )
