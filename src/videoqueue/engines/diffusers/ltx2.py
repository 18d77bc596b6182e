"""LTX-2: text-to-video and image-to-video, each with the synchronized sound the model makes.

How one job becomes one pipeline call, read top to bottom. The model renders 24 frames a
second (LTX2Pipeline's default `frame_rate`), 8k+1 frames (its VAE compresses time 8 times and
keeps the first frame), at sizes that are multiples of 32 (the VAE's spatial factor): its grid,
declared with its limits in `engines/diffusers_families.py`. Requests are mapped here, so the
pipeline never rounds anything silently. One folder does both kinds: a job with an image runs
`LTX2ImageToVideoPipeline` built on the very modules loaded for text.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from videoqueue.engines.base import EngineError, JobInput
from videoqueue.engines.diffusers.recipe import Sampling, StepCallback, Video, Waveform
from videoqueue.engines.diffusers_families import LTX2_GRID
from videoqueue.engines.stills import fit, open_image

GRID = LTX2_GRID
STEPS = 30
GUIDANCE = 3.0
"""Steps and video guidance of diffusers' own example for Lightricks/LTX-2."""
STG_BLOCKS = [29]
"""The transformer block spatio-temporal guidance perturbs; diffusers' default (28) is LTX-2.3's."""
TEXT_TO_VIDEO = "LTX2Pipeline"


def check(pipeline: Any) -> None:
    kind = type(pipeline).__name__
    if kind != TEXT_TO_VIDEO:
        raise EngineError(f"an LTX-2 folder holds an {TEXT_TO_VIDEO}, not {kind}")
    if pipeline.connectors.config.per_modality_projections:
        raise EngineError("this folder is LTX-2.3 or later, whose guidance the ltx2 family lacks")
    # Frames and sizes are promised on the 8k+1 / multiple-of-32 grid: the VAE must divide it.
    temporal, spatial = (
        pipeline.vae_temporal_compression_ratio,
        pipeline.vae_spatial_compression_ratio,
    )
    if GRID.frame_step % temporal or GRID.size_multiple % (
        spatial * pipeline.transformer_spatial_patch_size
    ):
        raise EngineError(
            f"this LTX-2 VAE compresses {temporal}x in time and {spatial}x in space, "
            f"which does not divide {GRID.frame_step} frames and {GRID.size_multiple} pixels"
        )


def run(pipeline: Any, job: JobInput, sampling: Sampling, on_step: StepCallback) -> Video:
    # 1. Map the request onto what the model renders.
    n_frames = GRID.frame_count(job.duration_s)
    width, height = GRID.frame_size(job.width, job.height)

    # 2. An image makes it image-to-video, on the same loaded modules (no second copy of the
    # weights). `image_crf=0` conditions on the image as sent: diffusers' default re-encodes it
    # through x264 with the machine's thread count, so a seed would not give the same video on
    # every machine.
    images: dict[str, Any] = {}
    if job.media.end_image is not None:
        raise EngineError("LTX-2 takes a start image only, not an end image")
    if job.media.image is not None:
        from diffusers import LTX2ImageToVideoPipeline

        images = {
            "image": fit(open_image(job.media.image, "image"), (width, height)),
            "image_crf": 0,
        }
        pipeline = LTX2ImageToVideoPipeline(**pipeline.components)
        pipeline.set_progress_bar_config(disable=True)

    # 3. Denoise and decode video and audio; the seed drives a CPU generator so a seed means
    # the same noise on every device.
    def step_end(_pipe: Any, step: int, _timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        on_step(step)
        return tensors

    result = pipeline(
        prompt=job.prompt,
        negative_prompt=job.negative_prompt or None,
        height=height,
        width=width,
        num_frames=n_frames,
        frame_rate=float(GRID.fps),
        num_inference_steps=sampling.steps,
        guidance_scale=sampling.guidance,
        spatio_temporal_guidance_blocks=STG_BLOCKS,
        use_cross_timestep=False,  # LTX-2.0's modulation (True is LTX-2.3's)
        generator=torch.Generator("cpu").manual_seed(job.seed),
        output_type="np",
        callback_on_step_end=step_end,
        **images,
    )

    # 4. Floats in [0, 1] to 8-bit RGB; the waveform as the vocoder made it.
    frames = (np.asarray(result.frames[0]) * 255).round().clip(0, 255)
    samples = result.audio[0].float().cpu().numpy()
    return Video(
        frames=np.ascontiguousarray(frames, dtype=np.uint8),
        fps=GRID.fps,
        audio=Waveform(samples, int(pipeline.vocoder.config.output_sampling_rate)),
    )
