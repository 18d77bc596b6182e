"""Turning a request's media fields (data URLs, http(s) URLs) into bytes, each within its cap."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from videoqueue.media.errors import ImageTooLarge, MediaError, MediaTooLarge
from videoqueue.media.fetch import FetchPolicy, Resolver, fetch_media, resolve_addresses
from videoqueue.media.rules import MediaClass, MediaRules, media_class, media_kind, megabytes


@dataclass(frozen=True)
class MediaBlob:
    """Bytes a client sent for one media field, addressed by their SHA-256."""

    field: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def decode_data_url(url: str, *, field: str) -> bytes:
    """The bytes of a `data:<mime>;base64,<payload>` URL. Raises `MediaError` (400)."""
    header, sep, payload = url.partition(",")
    if not sep or not header.startswith("data:"):
        raise MediaError(
            f"{field} must be an http(s):// URL or a data: URL", code="INVALID_REQUEST"
        )
    if not header.endswith(";base64"):
        raise MediaError(f"{field}: only base64 data URLs are supported", code="INVALID_REQUEST")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise MediaError(
            f"{field}: the data URL is not valid base64", code="INVALID_REQUEST"
        ) from None


def too_large_error(field: str, max_bytes: int) -> Callable[[], MediaError]:
    """The error for a `field` whose file is over `max_bytes` (made only when raised)."""
    limit = megabytes(max_bytes)
    cls = media_class(field)

    def make() -> MediaError:
        if cls is MediaClass.IMAGE:
            return ImageTooLarge(f"{field}: the image is larger than {limit}")
        return MediaTooLarge(
            f"{field}: the {cls.value} file is larger than {limit}",
            code=f"{cls.value.upper()}_TOO_LARGE",
        )

    return make


class MediaLoader:
    """`(url, field) → bytes` for every media field: data URLs, and http(s) URLs behind the
    fetch policy's SSRF guard, each capped at its kind's byte limit."""

    def __init__(
        self,
        rules: MediaRules,
        policy: FetchPolicy,
        *,
        resolve: Resolver = resolve_addresses,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.rules = rules
        self.policy = policy
        self.resolve = resolve
        self.transport = transport

    def __call__(self, url: str, field: str) -> bytes:
        max_bytes = self.rules.max_bytes(media_kind(field))
        too_large = too_large_error(field, max_bytes)
        if url.startswith("data:"):
            data = decode_data_url(url, field=field)
            if len(data) > max_bytes:
                raise too_large()
            return data
        return fetch_media(
            url,
            field,
            max_bytes=max_bytes,
            too_large=too_large,
            policy=self.policy,
            resolve=self.resolve,
            transport=self.transport,
        )
