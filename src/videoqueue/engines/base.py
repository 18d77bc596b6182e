"""What every generation engine promises, and the values that cross into it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from videoqueue.errors import VideoqueueError
from videoqueue.media.probe import VideoInfo

__all__ = [
    "Engine",
    "EngineError",
    "JobInput",
    "ProgressCallback",
    "ProviderContentPolicy",
    "VideoInfo",
]

ProgressCallback = Callable[[float], None]
"""Called by an engine with the fraction of the work done, 0.0 … 1.0."""


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


@dataclass(frozen=True)
class JobInput:
    """Everything an engine needs for one generation, with media as local files."""

    job_id: str
    model: str
    prompt: str = ""
    negative_prompt: str = ""
    width: int = 1280
    height: int = 720
    fps: int = 24
    duration_s: float = 5.0
    audio: bool = True
    seed: int = 0
    image_path: Path | None = None
    end_image_path: Path | None = None
    audio_path: Path | None = None
    video_path: Path | None = None
    reference_image_paths: tuple[Path, ...] = ()
    upscale_factor: int = 2
    params: Mapping[str, Any] = field(default_factory=dict)


class Engine(Protocol):
    """Turns a `JobInput` into an MP4 at `output_path`, reporting progress as it goes.

    Raises `EngineError` for a failed generation (refundable unless the input was at fault).
    """

    name: str

    def generate(
        self, job: JobInput, output_path: Path, progress: ProgressCallback
    ) -> VideoInfo: ...
