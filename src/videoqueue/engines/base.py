"""What every generation engine promises, and the values that cross into it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Generic, Protocol, TypeVar, runtime_checkable

from videoqueue.errors import VideoqueueError
from videoqueue.media.probe import VideoInfo

__all__ = [
    "Capabilities",
    "Element",
    "Engine",
    "EngineError",
    "FrameGrid",
    "JobCancelled",
    "JobInput",
    "JobKind",
    "Media",
    "ProgressCallback",
    "ProviderContentPolicy",
    "TimeLimitExceeded",
    "UpstreamJob",
    "UpstreamRecorder",
    "UpstreamReleaser",
    "VideoInfo",
    "record_upstream",
]

ProgressCallback = Callable[[float], None]
"""Called by an engine with the fraction of the work done, 0.0 … 1.0."""


@dataclass(frozen=True)
class UpstreamJob:
    """A job another server runs for one of ours: its id there, and the one-time download
    link a private model answers with (spec §8)."""

    queue_id: str
    download_url: str | None = None


@runtime_checkable
class UpstreamRecorder(Protocol):
    """A progress callback that can also store, with the job, the upstream job an engine
    started for it: `record_upstream` returns once it is stored, so that a later attempt
    resumes that job instead of starting another. Raises `JobCancelled` when the job is no
    longer the worker's."""

    def __call__(self, fraction: float) -> None: ...

    def record_upstream(self, upstream: UpstreamJob) -> None: ...


@runtime_checkable
class UpstreamReleaser(Protocol):
    """An engine that forwards jobs to another server, and can let go of one there once our
    job has ended: the upstream cancels it if it still runs and frees its stored video.

    `release` returns once the upstream no longer holds the job (one it does not know counts
    as released; one it refuses to release for good is logged and left to its expiry), and
    raises `EngineError` when the upstream stayed away or busy past the engine's retry rules
    (it is asked again later). `model` is our job's model, as in `JobInput.model`. `generate` never
    releases: its worker does, once the job's end is committed (`jobs/upstream_release.py`).
    """

    def release(self, upstream: UpstreamJob, model: str) -> None: ...


def record_upstream(progress: ProgressCallback, upstream: UpstreamJob) -> None:
    """Store `upstream` through `progress` where it can (a worker's can; a bare callback, as
    a test gives `generate`, stores nothing)."""
    if isinstance(progress, UpstreamRecorder):
        progress.record_upstream(upstream)


class EngineError(VideoqueueError):
    """Inference processing failed"""

    status = 500

    def __init__(self, message: str | None = None, *, refundable: bool = True) -> None:
        super().__init__(message)
        self.refundable = refundable


class ProviderContentPolicy(EngineError):
    """The selected model provider rejected this request due to its content policies."""

    status = 422

    def __init__(
        self,
        message: str | None = None,
        *,
        recommended_model: str | None = None,
        refundable: bool = True,
    ) -> None:
        super().__init__(message, refundable=refundable)
        self.recommended_model = recommended_model


class TimeLimitExceeded(EngineError):
    """The job ran past its model's time limit."""

    def __init__(self, max_run_seconds: float) -> None:
        super().__init__(f"the job ran past its model's time limit of {max_run_seconds:g} s")


class JobCancelled(VideoqueueError):
    """The job was cancelled while it ran; raised from an engine's progress callback."""


class JobKind(StrEnum):
    """What a model is asked to do; an engine declares the kinds it can."""

    TEXT = "text"
    IMAGE = "image"
    FIRST_LAST_FRAME = "first-last-frame"
    REFERENCE = "reference"
    VIDEO_TO_VIDEO = "video-to-video"
    UPSCALE = "upscale"


@dataclass(frozen=True, kw_only=True)
class FrameGrid:
    """The frames a model renders: `fps` a second, `frame_step`·k + 1 of them, each side a
    multiple of `size_multiple` and at least `min_side` (0: one multiple). A job is mapped onto
    the grid point nearest to it."""

    fps: int
    frame_step: int
    size_multiple: int
    min_side: int = 0

    def frame_count(self, duration_s: float) -> int:
        """The `frame_step`·k + 1 frames nearest to `duration_s` (Wan, 16 fps, 4k+1: 5 s → 81)."""
        wanted = max(1, round(duration_s * self.fps))
        return self.frame_step * round((wanted - 1) / self.frame_step) + 1

    def frame_size(self, width: int, height: int) -> tuple[int, int]:
        """Each side to its nearest multiple of `size_multiple`, which keeps the aspect within
        a few pixels."""

        def nearest(side: int) -> int:
            least = max(self.size_multiple, self.min_side)
            return max(least, self.size_multiple * round(side / self.size_multiple))

        return nearest(width), nearest(height)


@dataclass(frozen=True, kw_only=True)
class Capabilities:
    """What an engine can do, declared as data so that checking a catalogue imports no engine.

    A limit left None is no limit.
    """

    kinds: frozenset[JobKind]
    audio: bool
    """Its videos can carry sound it made (left out when a job says `audio=False`)."""
    audio_input: bool = False
    """It uses a job's audio file (`audio_url`)."""
    grid: FrameGrid | None = None
    """Its own rate, frame rule and size multiple; None: it renders what it is told."""
    max_lines: int | None = None
    """The tallest resolution it renders, in lines (`720p`: 720)."""
    max_frames: int | None = None
    """The most frames it renders in one video."""


M = TypeVar("M")
N = TypeVar("N")


@dataclass(frozen=True, kw_only=True)
class Element(Generic[M]):
    """A Kling element: a frontal image, up to three more views of it, an optional clip."""

    frontal_image: M
    reference_images: tuple[M, ...] = ()
    video: M | None = None

    def map(self, convert: Callable[[M], N]) -> Element[N]:
        return Element(
            frontal_image=convert(self.frontal_image),
            reference_images=tuple(convert(m) for m in self.reference_images),
            video=None if self.video is None else convert(self.video),
        )


@dataclass(frozen=True, kw_only=True)
class Media(Generic[M]):
    """A job's input files by role: storage keys in a job's spec, local files in `JobInput`."""

    image: M | None = None
    end_image: M | None = None
    audio: M | None = None
    video: M | None = None
    reference_images: tuple[M, ...] = ()
    reference_videos: tuple[M, ...] = ()
    reference_audios: tuple[M, ...] = ()
    elements: tuple[Element[M], ...] = ()
    scene_images: tuple[M, ...] = ()

    def map(self, convert: Callable[[M], N]) -> Media[N]:
        """The same roles, each file converted (a storage key fetched to a path, say)."""

        def one(item: M | None) -> N | None:
            return None if item is None else convert(item)

        def many(items: tuple[M, ...]) -> tuple[N, ...]:
            return tuple(convert(m) for m in items)

        return Media(
            image=one(self.image),
            end_image=one(self.end_image),
            audio=one(self.audio),
            video=one(self.video),
            reference_images=many(self.reference_images),
            reference_videos=many(self.reference_videos),
            reference_audios=many(self.reference_audios),
            elements=tuple(e.map(convert) for e in self.elements),
            scene_images=many(self.scene_images),
        )

    def files(self) -> list[M]:
        """Every file of every role (one that several roles send, as often as they do)."""
        found: list[M] = []
        self.map(found.append)
        return found


@dataclass(frozen=True, kw_only=True)
class JobInput:
    """Everything an engine needs for one generation, with media as local files."""

    job_id: str
    model: str
    prompt: str = ""
    negative_prompt: str = ""
    width: int = 1280
    height: int = 720
    fps: int = 24
    frame_count: int = 120
    duration_s: float = 5.0
    audio: bool = True
    seed: int = 0
    upscale_factor: int | None = None
    max_output_pixels: int | None = None
    """The largest upscaled frame (width x height) the model allows; None: no cap."""
    media: Media[Path] = field(default_factory=Media)
    media_urls: Media[str] | None = None
    """The same inputs as signed links to this server that an upstream may GET while the job
    runs (None where the worker signs none); for an engine that forwards the job."""
    upstream: UpstreamJob | None = None
    """The upstream job an earlier attempt started (an engine that forwards resumes it)."""


class Engine(Protocol):
    """Turns a `JobInput` into an MP4 at `output_path`, reporting progress as it goes.

    Built once per process (its setup: weights loaded, say), then asked for job after job.
    Raises `EngineError` for a failed generation (refundable unless the input was at fault).
    `progress` may raise `JobCancelled`: the engine lets it through and leaves no output.
    """

    name: str

    def generate(
        self, job: JobInput, output_path: Path, progress: ProgressCallback
    ) -> VideoInfo: ...
