"""Wan 2.1: text-to-video (1.3B, 14B), image-to-video (480p, 720p) and first-last-frame.

How one job becomes one pipeline call, read top to bottom. The model renders 16 frames a
second, 4k+1 frames, at sizes that are multiples of 16 (the VAE's 8 times the patch's 2): its
grid, declared with its limits in `engines/diffusers_families.py`.
"""

from __future__ import annotations

from typing import Any

from videoqueue.engines.base import JobInput
from videoqueue.engines.diffusers import wan
from videoqueue.engines.diffusers.recipe import Sampling, StepCallback, Video
from videoqueue.engines.diffusers_families import WAN21_GRID

GRID = WAN21_GRID
STEPS = 50
GUIDANCE = 5.0


def check(pipeline: Any) -> None:
    wan.check(pipeline, wan.WAN21, GRID)


def run(pipeline: Any, job: JobInput, sampling: Sampling, on_step: StepCallback) -> Video:
    # 1. Map the request onto what the model renders.
    n_frames = GRID.frame_count(job.duration_s)
    size = GRID.frame_size(job.width, job.height)

    # 2. Images: a start image for image-to-video, and an end image for first-last-frame.
    images = wan.images(pipeline, job, size, end_image=True)

    # 3. Denoise and decode.
    frames = wan.render(pipeline, job, sampling, on_step, n_frames, size, **images)
    return Video(frames=frames, fps=GRID.fps)
