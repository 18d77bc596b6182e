"""What each kind of media field must be: its formats, size, length and shape.

A field's *kind* is its path with the list indices removed: `reference_video_urls[1]` is of kind
`reference_video_urls`, `elements[0].frontal_image_url` of kind `elements.frontal_image_url`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from videoqueue.media.errors import MediaError

MB = 1024 * 1024


class MediaClass(StrEnum):
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"


KIND_CLASS = {
    "image_url": MediaClass.IMAGE,
    "end_image_url": MediaClass.IMAGE,
    "reference_image_urls": MediaClass.IMAGE,
    "scene_image_urls": MediaClass.IMAGE,
    "elements.frontal_image_url": MediaClass.IMAGE,
    "elements.reference_image_urls": MediaClass.IMAGE,
    "audio_url": MediaClass.AUDIO,
    "reference_audio_urls": MediaClass.AUDIO,
    "video_url": MediaClass.VIDEO,
    "elements.video_url": MediaClass.VIDEO,
    "reference_video_urls": MediaClass.VIDEO,
}

# FFmpeg demuxer names, forced when opening (never auto-probed: a probed playlist format such as
# HLS would make FFmpeg fetch the URLs inside the file, behind the SSRF guard's back).
MP4_MOV = "mov"
MATROSKA_WEBM = "matroska"
WAV = "wav"
MP3 = "mp3"

_INDEX = re.compile(r"\[\d+\]")


def media_kind(path: str) -> str:
    """`elements[0].reference_image_urls[2]` → `elements.reference_image_urls`.

    Raises `MediaError` (400) for a path that is no media field (an unknown key of an element).
    """
    kind = _INDEX.sub("", path)
    if kind not in KIND_CLASS:
        raise MediaError(f"{path} is not a media field", code="INVALID_REQUEST")
    return kind


def media_class(path: str) -> MediaClass:
    return KIND_CLASS[media_kind(path)]


@dataclass(frozen=True)
class ImageRule:
    """Every image of a request: decodable, and within the model's reference geometry."""

    max_bytes: int = 30 * MB
    max_pixels: int = 40_000_000
    min_short_side: int | None = None
    min_aspect: float | None = None  # width / height, exclusive
    max_aspect: float | None = None


@dataclass(frozen=True)
class ClipRule:
    """One kind of audio or video clip: its containers, byte cap and length per clip and in all."""

    formats: tuple[str, ...]
    max_bytes: int
    max_seconds: float
    min_seconds: float = 0.0
    total_seconds: float | None = None
    video_codecs: tuple[str, ...] = ()
    """FFmpeg decoder names the video stream must use (empty: any)."""


@dataclass(frozen=True)
class MediaRules:
    """The rules for every media kind of one model, and whether its media is screened for faces."""

    image: ImageRule = field(default_factory=ImageRule)
    audio: ClipRule = ClipRule(formats=(WAV, MP3), max_bytes=15 * MB, max_seconds=30.0)
    reference_audio: ClipRule = ClipRule(
        formats=(WAV, MP3), max_bytes=15 * MB, min_seconds=2.0, max_seconds=15.0, total_seconds=15.0
    )
    video: ClipRule = ClipRule(
        formats=(MP4_MOV, MATROSKA_WEBM), max_bytes=256 * MB, max_seconds=300.0
    )
    reference_video: ClipRule = ClipRule(
        formats=(MP4_MOV,),
        max_bytes=50 * MB,
        min_seconds=2.0,
        max_seconds=15.0,
        total_seconds=15.0,
        video_codecs=("h264", "hevc"),
    )
    audio_url_is_reference: bool = False
    """Seedance R2V: `audio_url` counts as one more reference audio (spec §4.1)."""
    detect_faces: bool = False
    source_clip_seconds: tuple[float, float] | None = None
    """A source-matched duration's source clip (the first reference video): (min, max) s."""

    def clip_rule(self, kind: str) -> ClipRule:
        if kind == "reference_video_urls":
            return self.reference_video
        if kind == "reference_audio_urls" or (kind == "audio_url" and self.audio_url_is_reference):
            return self.reference_audio
        if KIND_CLASS[kind] is MediaClass.AUDIO:
            return self.audio
        return self.video

    def max_bytes(self, kind: str) -> int:
        """The most bytes a field of this kind may hold (fetching stops past it)."""
        if KIND_CLASS[kind] is MediaClass.IMAGE:
            return self.image.max_bytes
        return self.clip_rule(kind).max_bytes


def megabytes(size: int) -> str:
    """`15728640` → `15 MB`; what the messages show."""
    value = size / MB
    return f"{value:.0f} MB" if value == int(value) else f"{value:.1f} MB"


def seconds(value: float) -> str:
    return f"{value:g} s"
