"""Wan 2.2 A14B: text-to-video and image-to-video, each with two experts.

How one job becomes one pipeline call, read top to bottom. A high-noise expert (`transformer`)
runs the early steps and a low-noise expert (`transformer_2`) the rest, from the first step
whose timestep is below the folder's `boundary_ratio` of the schedule (0.875 for T2V, 0.9 for
I2V). The grid is Wan 2.1's: 16 frames a second, 4k+1 frames, sides multiples of 16
(`engines/diffusers_families.py` declares it with the family's limits).
"""

from __future__ import annotations

from typing import Any

from videoqueue.engines.base import JobInput
from videoqueue.engines.diffusers import wan
from videoqueue.engines.diffusers.recipe import Sampling, StepCallback, Video
from videoqueue.engines.diffusers_families import WAN22_GRID

GRID = WAN22_GRID
STEPS = 40
GUIDANCE = 4.0
"""The high-noise expert's; the low-noise one takes `Sampling.guidance_2`, else the same."""


def check(pipeline: Any) -> None:
    wan.check(pipeline, wan.A14B, GRID)


def run(pipeline: Any, job: JobInput, sampling: Sampling, on_step: StepCallback) -> Video:
    # 1. Map the request onto what the model renders.
    n_frames = GRID.frame_count(job.duration_s)
    size = GRID.frame_size(job.width, job.height)

    # 2. Images: a start image for image-to-video; A14B has no first-last-frame model.
    images = wan.images(pipeline, job, size, end_image=False)

    # 3. Denoise with both experts, each with its own guidance, and decode.
    frames = wan.render(
        pipeline,
        job,
        sampling,
        on_step,
        n_frames,
        size,
        guidance_scale_2=sampling.guidance_2,
        **images,
    )
    return Video(frames=frames, fps=GRID.fps)
