"""What a family's recipe module provides, and the values it hands back to the engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from videoqueue.engines.base import JobInput

StepCallback = Callable[[int], None]
"""Called with the index of each denoising step just done; raising stops the run."""


@dataclass(frozen=True)
class Sampling:
    """How a bound model samples: the operator's choice, else the family's defaults."""

    steps: int
    guidance: float
    guidance_2: float | None = None
    """The low-noise expert's guidance where a model has two; None: the same as `guidance`."""


@dataclass(frozen=True)
class Waveform:
    """Sound a pipeline made: float samples in [-1, 1], (channels, samples), at `sample_rate`."""

    samples: npt.NDArray[np.float32]
    sample_rate: int


@dataclass(frozen=True)
class Video:
    """The frames a pipeline made, (frames, height, width, 3) uint8 RGB, at their true rate,
    and the sound made with them, if the family makes any."""

    frames: npt.NDArray[np.uint8]
    fps: int
    audio: Waveform | None = None


class Recipe(Protocol):
    """A recipe module: the family's defaults, a load-time check, and one job's pipeline call."""

    STEPS: int
    GUIDANCE: float

    def check(self, pipeline: Any) -> None:
        """Raise `EngineError` unless `pipeline` is one this family's recipe can drive."""

    def run(self, pipeline: Any, job: JobInput, sampling: Sampling, on_step: StepCallback) -> Video:
        """Generate `job`'s frames, calling `on_step` after every denoising step."""
