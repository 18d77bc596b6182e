"""What the Wan recipes share: which Wan a folder holds, Wan's frame grid, and one pipeline call.

Wan's VAE encodes the first frame alone and every 4 after it as one latent frame, so a clip has
4k+1 frames; each side is a multiple of the VAE's spatial factor times the transformer's 2x2
patch. Requests are mapped onto that grid here, so the pipeline never rounds anything silently.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image

from videoqueue.engines.base import EngineError, FrameGrid, JobInput
from videoqueue.engines.diffusers.recipe import Sampling, StepCallback
from videoqueue.engines.stills import fit, open_image

TEXT_TO_VIDEO = "WanPipeline"
IMAGE_TO_VIDEO = "WanImageToVideoPipeline"
"""Also first-last-frame (Wan 2.1 FLF2V): the same pipeline, given a `last_image`."""
WAN21 = "Wan 2.1"
A14B = "Wan 2.2 A14B (two experts)"
TI2V = "Wan 2.2 TI2V-5B"


def variant(pipeline: Any) -> str:
    """Which Wan `pipeline` is (`WAN21`, `A14B` or `TI2V`), else what it is instead."""
    kind = type(pipeline).__name__
    if kind not in (TEXT_TO_VIDEO, IMAGE_TO_VIDEO):
        return f"a {kind}"
    two_experts = (pipeline.config.boundary_ratio is not None, pipeline.transformer_2 is not None)
    if two_experts == (True, True):
        return A14B
    if two_experts != (False, False):
        return "a Wan with only one of transformer_2 and boundary_ratio"
    return TI2V if pipeline.config.expand_timesteps else WAN21


def check(pipeline: Any, wanted: str, grid: FrameGrid) -> None:
    """Raise `EngineError` unless `pipeline` is the Wan `wanted`, packing frames and pixels as
    `grid` says."""
    found = variant(pipeline)
    if found != wanted:
        raise EngineError(f"this folder holds {found}, not {wanted}")
    multiple = pipeline.vae_scale_factor_spatial * pipeline.transformer.config.patch_size[1]
    temporal = pipeline.vae_scale_factor_temporal
    if (multiple, temporal) != (grid.size_multiple, grid.frame_step):
        raise EngineError(
            f"this {wanted} folder packs {temporal} frames per latent frame and {multiple} pixels"
            f" of a side per token; the recipe expects {grid.frame_step} and {grid.size_multiple}"
        )


def images(
    pipeline: Any, job: JobInput, size: tuple[int, int], *, end_image: bool
) -> dict[str, Image.Image]:
    """`job`'s images fitted to `size`, as keyword arguments of `pipeline`: an image-to-video
    pipeline needs an image (and takes an end image where `end_image`), a text-to-video one
    takes none."""
    name = variant(pipeline)
    if type(pipeline).__name__ == TEXT_TO_VIDEO:
        if job.media.image is not None or job.media.end_image is not None:
            raise EngineError(f"this {name} model is text-to-video: it takes no image")
        return {}
    if job.media.image is None:
        raise EngineError(f"this {name} model is image-to-video: it needs an image")
    fitted = {"image": fit(open_image(job.media.image, "image"), size)}
    if job.media.end_image is not None:
        if not end_image:
            raise EngineError(f"this {name} model takes no end image")
        fitted["last_image"] = fit(open_image(job.media.end_image, "end_image"), size)
    return fitted


def render(
    pipeline: Any,
    job: JobInput,
    sampling: Sampling,
    on_step: StepCallback,
    n_frames: int,
    size: tuple[int, int],
    **inputs: Any,
) -> npt.NDArray[np.uint8]:
    """Denoise and decode `job` at `size` and `n_frames` (sizes on the grid), with `inputs`
    (images, a second guidance) passed through, as (frames, height, width, 3) 8-bit RGB."""

    def step_end(_pipe: Any, step: int, _timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        on_step(step)
        return tensors

    width, height = size
    # The seed drives a CPU generator so that a seed means the same noise on every device.
    result = pipeline(
        prompt=job.prompt,
        negative_prompt=job.negative_prompt or None,
        height=height,
        width=width,
        num_frames=n_frames,
        num_inference_steps=sampling.steps,
        guidance_scale=sampling.guidance,
        generator=torch.Generator("cpu").manual_seed(job.seed),
        output_type="np",
        callback_on_step_end=step_end,
        **inputs,
    )
    frames = (np.asarray(result.frames[0]) * 255).round().clip(0, 255)
    return np.ascontiguousarray(frames, dtype=np.uint8)
