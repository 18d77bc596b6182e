"""Deciding what a media file is by decoding it, and checking it against its kind's rules.

The declared MIME type and the URL's extension are never trusted: an image must decode with
Pillow, audio and video with PyAV under a demuxer forced from a short allow-list. Any failure
inside a decoder is the client's file at fault, answered as a 400 that names the field.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from videoqueue.media.errors import (
    CorruptedImage,
    DurationTooLong,
    DurationTooShort,
    ImageAspectRatioOutOfBounds,
    ImageTooLarge,
    ImageTooSmall,
    InvalidAudioFormat,
    InvalidVideoFormat,
    MediaError,
)
from videoqueue.media.faces import FACE_ROLES, FRAME_MAX_SIDE, any_face, has_face, shrink
from videoqueue.media.intake import MediaBlob
from videoqueue.media.rules import (
    KIND_CLASS,
    MATROSKA_WEBM,
    MP3,
    MP4_MOV,
    WAV,
    ClipRule,
    MediaClass,
    MediaRules,
    media_kind,
    seconds,
)

if TYPE_CHECKING:
    import av.stream
    import av.video.stream
    from av.container import InputContainer

    from videoqueue.media.faces import Gray

# PyAV, NumPy and Pillow are imported where a file is decoded, not here: the API process
# imports this module for `MediaInspector` but decodes only in its sandbox processes, which
# preload them (media/sandbox.py).

IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")
FORMAT_NAMES = {MP4_MOV: "MP4/MOV", MATROSKA_WEBM: "WebM", WAV: "WAV", MP3: "MP3"}
DURATION_SLACK_S = 0.1
"""Encoders round a clip's length a little (AAC priming, frame timing); limits allow this much."""
FACE_SAMPLE_EVERY_S = 1.0
FACE_SAMPLES_MAX = 30


@dataclass(frozen=True)
class MediaFacts:
    """What decoding one media field found."""

    field: str
    kind: str
    sha256: str
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    fps: float | None = None
    has_face: bool = False


def _signature_matches(data: bytes, demuxer: str) -> bool:
    """Whether the file starts the way files of this container do (checked before demuxing)."""
    if demuxer == WAV:
        return data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    if demuxer == MP3:
        return data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0)
    if demuxer == MP4_MOV:
        return data[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot")
    return data[:4] == b"\x1a\x45\xdf\xa3"  # EBML: Matroska / WebM


def _open_container(
    data: bytes, rule: ClipRule, field: str, error: type[MediaError], what: str
) -> InputContainer:
    """The file opened with the first allowed demuxer whose signature it carries."""
    import av
    from av.container import InputContainer

    accepted = " or ".join(FORMAT_NAMES[f] for f in rule.formats)
    for demuxer in rule.formats:
        if not _signature_matches(data, demuxer):
            continue
        try:
            container = av.open(io.BytesIO(data), format=demuxer)
        except Exception:  # whatever the demuxer raises, the file is at fault
            raise error(
                f"{field}: the {FORMAT_NAMES[demuxer]} file could not be decoded "
                f"(truncated or damaged?)"
            ) from None
        if isinstance(container, InputContainer):
            return container
        container.close()
    raise error(f"{field}: the file is not {accepted} {what}")


def _stated_seconds(container: InputContainer, stream: av.stream.Stream) -> float:
    import av

    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return 0.0


class Sandbox(Protocol):
    def inspect(self, rules: MediaRules, blob: MediaBlob) -> MediaFacts:
        """Inspect `blob` under `rules` somewhere a crash cannot reach the caller."""
        ...


class MediaInspector:
    """Checks each media file of one request against one model's `MediaRules`."""

    def __init__(self, rules: MediaRules, sandbox: Sandbox | None = None) -> None:
        self.rules = rules
        self.sandbox = sandbox

    def inspect(self, blob: MediaBlob) -> MediaFacts:
        """Decode `blob` and check it; raises a `MediaError` naming the field and the limit.

        With a sandbox, the decoding happens in one of its processes.
        """
        kind = media_kind(blob.field)
        if self.sandbox is not None:
            return self.sandbox.inspect(self.rules, blob)
        screen = self.rules.detect_faces and kind in FACE_ROLES
        media = KIND_CLASS[kind]
        if media is MediaClass.IMAGE:
            return self._image(blob, kind, screen)
        if media is MediaClass.AUDIO:
            return self._audio(blob, kind)
        return self._video(blob, kind, screen)

    def check_all(self, facts: Sequence[MediaFacts], *, source_matched: bool = False) -> None:
        """Limits over several files: the combined length of reference clips, and the source
        clip's length when the output's duration is matched to it (`source_matched`)."""
        sources = [f for f in facts if f.kind == "reference_video_urls"]
        if source_matched and self.rules.source_clip_seconds and sources:
            shortest, longest = self.rules.source_clip_seconds
            source = sources[0]
            length = source.duration_s or 0.0
            if length < shortest - DURATION_SLACK_S or length > longest + DURATION_SLACK_S:
                error = DurationTooShort if length < shortest else DurationTooLong
                raise error(
                    f"{source.field}: a duration matched to the source needs a source clip of "
                    f"{seconds(shortest)} to {seconds(longest)}; this one lasts {length:.1f} s",
                    code="VIDEO_DURATION_TOO_SHORT"
                    if length < shortest
                    else "VIDEO_DURATION_TOO_LONG",
                )
        audio_kinds = {"reference_audio_urls"}
        if self.rules.audio_url_is_reference:
            audio_kinds.add("audio_url")
        for kinds, rule, what in (
            ({"reference_video_urls"}, self.rules.reference_video, "video"),
            (audio_kinds, self.rules.reference_audio, "audio"),
        ):
            clips = [f for f in facts if f.kind in kinds]
            total = sum(f.duration_s or 0.0 for f in clips)
            if (
                len(clips) > 1
                and rule.total_seconds is not None
                and (total > rule.total_seconds + DURATION_SLACK_S)
            ):
                names = " and ".join(sorted(kinds))
                raise DurationTooLong(
                    f"{names}: the reference {what} clips last {total:.1f} s together; "
                    f"at most {seconds(rule.total_seconds)} in all is allowed",
                    code=f"{what.upper()}_DURATION_TOO_LONG",
                )

    # -- images ----------------------------------------------------------------------------

    def _image(self, blob: MediaBlob, kind: str, screen: bool) -> MediaFacts:
        import numpy as np
        from PIL import Image

        rule = self.rules.image
        field = blob.field
        too_large = ImageTooLarge(
            f"{field}: the image is larger than {rule.max_pixels // 1_000_000} megapixels"
        )
        try:
            with Image.open(io.BytesIO(blob.data), formats=IMAGE_FORMATS) as image:
                width, height = image.size
                if width * height > rule.max_pixels:
                    raise ImageTooLarge(
                        f"{field}: the image is {width}x{height} px; at most "
                        f"{rule.max_pixels // 1_000_000} megapixels are accepted"
                    )
                image.load()
                gray: Gray | None = np.asarray(image.convert("L")) if screen else None
        except MediaError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise too_large from None  # Pillow's own guard, far above ours, at open()
        except Exception:  # whatever a decoder raises, the file is at fault
            raise CorruptedImage(
                f"{field}: the file could not be decoded as an image "
                f"(accepted: JPEG, PNG, WebP, BMP, TIFF, GIF)"
            ) from None
        self._check_geometry(field, width, height)
        face = gray is not None and has_face(gray)
        return MediaFacts(
            field=field, kind=kind, sha256=blob.sha256, width=width, height=height, has_face=face
        )

    def _check_geometry(self, field: str, width: int, height: int) -> None:
        rule = self.rules.image
        if rule.min_short_side is not None and min(width, height) < rule.min_short_side:
            raise ImageTooSmall(
                f"{field}: the image is {width}x{height} px; its shorter side must be at least "
                f"{rule.min_short_side} px"
            )
        ratio = width / height
        low, high = rule.min_aspect, rule.max_aspect
        if (low is not None and ratio <= low) or (high is not None and ratio >= high):
            raise ImageAspectRatioOutOfBounds(
                f"{field}: the image's width/height ratio is {ratio:.2f}; it must lie strictly "
                f"between {low if low is not None else 0:g} and "
                f"{high if high is not None else 'infinity'}"
            )

    # -- audio and video -------------------------------------------------------------------

    def _check_length(self, field: str, what: str, duration: float, rule: ClipRule) -> None:
        code = f"{what.upper()}_DURATION_TOO"
        if duration > rule.max_seconds + DURATION_SLACK_S:
            raise DurationTooLong(
                f"{field}: the {what} lasts {duration:.1f} s; at most "
                f"{seconds(rule.max_seconds)} is allowed",
                code=code + "_LONG",
            )
        if duration < rule.min_seconds - DURATION_SLACK_S:
            raise DurationTooShort(
                f"{field}: the {what} lasts {duration:.1f} s; at least "
                f"{seconds(rule.min_seconds)} is required",
                code=code + "_SHORT",
            )

    def _audio(self, blob: MediaBlob, kind: str) -> MediaFacts:
        rule = self.rules.clip_rule(kind)
        field = blob.field
        container = _open_container(blob.data, rule, field, InvalidAudioFormat, "audio")
        try:
            with container:
                if not container.streams.audio:
                    raise InvalidAudioFormat(f"{field}: the file has no audio stream")
                stream = container.streams.audio[0]
                if _stated_seconds(container, stream) > rule.max_seconds + DURATION_SLACK_S:
                    self._check_length(field, "audio", _stated_seconds(container, stream), rule)
                samples, rate = 0, 0
                for frame in container.decode(stream):
                    samples += frame.samples
                    rate = frame.sample_rate
                    if samples > (rule.max_seconds + DURATION_SLACK_S) * rate:
                        break  # too long already: no need to decode the rest
        except MediaError:
            raise
        except Exception:  # whatever a decoder raises, the file is at fault
            raise InvalidAudioFormat(f"{field}: the audio could not be decoded") from None
        if samples == 0 or rate == 0:
            raise InvalidAudioFormat(f"{field}: the file holds no decodable audio")
        duration = samples / rate
        self._check_length(field, "audio", duration, rule)
        return MediaFacts(field=field, kind=kind, sha256=blob.sha256, duration_s=duration)

    def _video(self, blob: MediaBlob, kind: str, screen: bool) -> MediaFacts:
        rule = self.rules.clip_rule(kind)
        field = blob.field
        container = _open_container(blob.data, rule, field, InvalidVideoFormat, "video")
        try:
            with container:
                if not container.streams.video:
                    raise InvalidVideoFormat(f"{field}: the file has no video stream")
                stream = container.streams.video[0]
                codec = stream.codec_context.name
                if rule.video_codecs and codec not in rule.video_codecs:
                    raise InvalidVideoFormat(
                        f"{field}: the video is {codec}; it must be H.264 or H.265"
                    )
                stream.thread_type = "AUTO"
                stated = _stated_seconds(container, stream)
                if stated > rule.max_seconds + DURATION_SLACK_S:
                    self._check_length(field, "video", stated, rule)
                # Reference clips are short: decode them whole (their real length, and frames
                # for the face screen). Long inputs decode one frame to prove they play.
                whole = kind == "reference_video_urls" or screen
                decoded, face = _decode(
                    container,
                    stream,
                    whole=whole,
                    screen=screen,
                    stop_after_s=rule.max_seconds + DURATION_SLACK_S,
                )
                width = stream.codec_context.width
                height = stream.codec_context.height
                rate = stream.average_rate or stream.guessed_rate
        except MediaError:
            raise
        except Exception:  # whatever a decoder raises, the file is at fault
            raise InvalidVideoFormat(f"{field}: the video could not be decoded") from None
        if decoded is None:
            raise InvalidVideoFormat(f"{field}: the file holds no decodable video frames")
        duration = max(stated, decoded)
        self._check_length(field, "video", duration, rule)
        return MediaFacts(
            field=field,
            kind=kind,
            sha256=blob.sha256,
            width=width,
            height=height,
            duration_s=duration,
            fps=float(rate) if rate else None,
            has_face=face,
        )


def _decode(
    container: InputContainer,
    stream: av.video.stream.VideoStream,
    *,
    whole: bool,
    screen: bool,
    stop_after_s: float,
) -> tuple[float | None, bool]:
    """(the decoded length in seconds or None if no frame decodes, whether a face was seen).

    Stops once the frames pass `stop_after_s`: a file whose container understates its length
    is found too long without decoding all of it.
    """
    import numpy as np

    rate = float(stream.average_rate or stream.guessed_rate or 24)
    end: float | None = None
    samples: list[Gray] = []
    next_sample = 0.0
    for frame in container.decode(stream):
        time = float(frame.time) if frame.time is not None else (end or 0.0)
        end = max(end or 0.0, time + 1.0 / rate)
        if screen and time >= next_sample and len(samples) < FACE_SAMPLES_MAX:
            gray = np.asarray(frame.to_ndarray(format="gray"), dtype=np.uint8)
            samples.append(shrink(gray, FRAME_MAX_SIDE))
            next_sample = time + FACE_SAMPLE_EVERY_S
        if not whole or end > stop_after_s:
            break
    return end, any_face(samples)
