"""A job's local media files as `data:` URLs, the form every Venice-compatible server takes,
and a job's media URLs as the queue request's fields."""

from __future__ import annotations

import base64
from pathlib import Path

from videoqueue.engines.base import Element, Media

SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF8", "image/gif"),
    (8, b"WEBP", "image/webp"),
    (8, b"WAVE", "audio/wav"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"\xff\xfb", "audio/mpeg"),
    (0, b"\xff\xf3", "audio/mpeg"),
    (0, b"\x1a\x45\xdf\xa3", "video/webm"),
    (4, b"ftypqt", "video/quicktime"),
    (4, b"ftyp", "video/mp4"),
)
"""(offset, bytes, media type): stored inputs are named by their hash, so the type is read
from the first bytes."""


def media_type(head: bytes) -> str:
    for offset, magic, kind in SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return kind
    return "application/octet-stream"


def data_url(path: Path) -> str:
    data = path.read_bytes()
    return f"data:{media_type(data[:16])};base64,{base64.b64encode(data).decode()}"


def media_fields(urls: Media[str]) -> dict[str, object]:
    """The queue request's media fields (spec §4.1) for the URLs of the files a job has."""
    fields: dict[str, object] = {
        "image_url": urls.image,
        "end_image_url": urls.end_image,
        "audio_url": urls.audio,
        "video_url": urls.video,
        "reference_image_urls": list(urls.reference_images),
        "reference_video_urls": list(urls.reference_videos),
        "reference_audio_urls": list(urls.reference_audios),
        "scene_image_urls": list(urls.scene_images),
        "elements": [_element(e) for e in urls.elements],
    }
    return {name: value for name, value in fields.items() if value}


def _element(element: Element[str]) -> dict[str, object]:
    fields: dict[str, object] = {"frontal_image_url": element.frontal_image}
    if element.reference_images:
        fields["reference_image_urls"] = list(element.reference_images)
    if element.video is not None:
        fields["video_url"] = element.video
    return fields
