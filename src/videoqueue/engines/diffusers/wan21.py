"""Wan 2.1: text-to-video (1.3B, 14B), image-to-video (480p, 720p) and first-last-frame.

How one job becomes one pipeline call, read top to bottom. The model renders 16 frames a
second, 4k+1 frames, at sizes that are multiples of 16 (the VAE's 8 times the patch's 2).
"""

from __future__ import annotations

from typing import Any

from videoqueue.engines.base import JobInput
from videoqueue.engines.diffusers import wan
from videoqueue.engines.diffusers.recipe import Sampling, StepCallback, Video

FPS = 16
SIZE_MULTIPLE = 16
STEPS = 50
GUIDANCE = 5.0


def check(pipeline: Any) -> None:
    wan.check(pipeline, wan.WAN21, SIZE_MULTIPLE)


def run(pipeline: Any, job: JobInput, sampling: Sampling, on_step: StepCallback) -> Video:
    # 1. Map the request onto what the model renders.
    n_frames = wan.frame_count(job.duration_s, FPS)
    size = wan.frame_size(job.width, job.height, SIZE_MULTIPLE)

    # 2. Images: a start image for image-to-video, and an end image for first-last-frame.
    images = wan.images(pipeline, job, size, end_image=True)

    # 3. Denoise and decode.
    frames = wan.render(pipeline, job, sampling, on_step, n_frames, size, **images)
    return Video(frames=frames, fps=FPS)
