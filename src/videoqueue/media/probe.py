"""Reading what a video file holds: its size, rate, length and whether it has sound."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from videoqueue.media.errors import MediaError

if TYPE_CHECKING:  # PyAV loads where videos are read (workers, the decode sandbox), not in the API
    from av.container import InputContainer
    from av.video.stream import VideoStream

LOCAL_FILES_ONLY = {"protocol_whitelist": "file"}
"""Demuxer options for the files workers read: whatever a file holds (a playlist, a reference
to another file), FFmpeg may open nothing but local files for it. FFmpeg's own default already
limits nested opens to the parent's protocol; this states it where the files are opened."""


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds, as probed or as an engine reports the MP4 it wrote."""

    width: int
    height: int
    fps: float
    duration_s: float
    frames: int
    has_audio: bool


def probe_video(path: Path) -> VideoInfo:
    """Describe the first video stream of an MP4, MOV or WebM file.

    Decodes at least one frame, so a file that opens but cannot be played raises `MediaError`
    too; decodes every frame only when the container does not state the frame count.
    """
    import av

    try:
        with av.open(str(path), options=LOCAL_FILES_ONLY) as container:
            if not container.streams.video:
                raise MediaError(f"{path.name} has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            frames = stream.frames or _count_frames(container, stream)
            if frames == 0 or (stream.frames and not _decodes_a_frame(container, stream)):
                raise MediaError(f"{path.name} has no decodable video frames")
            rate = stream.average_rate or stream.guessed_rate
            if not rate:
                raise MediaError(f"{path.name} does not state a frame rate")
            return VideoInfo(
                width=stream.codec_context.width,
                height=stream.codec_context.height,
                fps=float(rate),
                duration_s=_duration_s(container, stream) or float(frames / rate),
                frames=frames,
                has_audio=bool(container.streams.audio),
            )
    except (av.FFmpegError, OSError) as exc:
        raise MediaError(f"cannot decode {path.name} as video ({exc})") from exc


def _count_frames(container: InputContainer, stream: VideoStream) -> int:
    return sum(1 for _ in container.decode(stream))


def _decodes_a_frame(container: InputContainer, stream: VideoStream) -> bool:
    return next(iter(container.decode(stream)), None) is not None


def _duration_s(container: InputContainer, stream: VideoStream) -> float:
    """The stream's own duration where the container records it, else the container's."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000  # FFmpeg's AV_TIME_BASE: microseconds
    return 0.0
