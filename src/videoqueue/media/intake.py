"""Turning a request's media fields (data URLs) into checked bytes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from videoqueue.media.errors import MediaError

IMAGE_FIELDS = frozenset({"image_url", "end_image_url", "reference_image_urls",
                          "scene_image_urls", "frontal_image_url"})


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
        raise MediaError(f"{field} must be an http(s) URL or a data: URL")
    if not header.endswith(";base64"):
        raise MediaError(f"{field}: only base64 data URLs are supported")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise MediaError(f"{field}: the data URL is not valid base64") from None


def image_size(blob: MediaBlob) -> tuple[int, int]:
    """(width, height) of an image, decoding it fully. Raises `MediaError` (400)."""
    try:
        with Image.open(io.BytesIO(blob.data)) as image:
            image.load()
            return image.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise MediaError(f"{blob.field}: the image could not be decoded",
                         code="CORRUPTED_IMAGE") from None


def load_media(url: str, field: str) -> bytes:
    """The bytes behind a media field's URL (data: URLs; remote URLs are refused for now)."""
    if url.startswith("data:"):
        return decode_data_url(url, field=field)
    raise MediaError(f"{field}: only data: URLs are accepted by this server")
