"""What size an upscale gives, and the cap on it: read by the engine and by submit alike.

Kept apart from `upscale.py` so the API process can check a request against the cap without
loading PyAV.
"""

from __future__ import annotations

from videoqueue.errors import VideoqueueError

DEFAULT_MAX_OUTPUT_PIXELS = 4096 * 2160
"""DCI 4K: a 1080p input may go x2, and a x4 request needs an input of at most ~1024x540."""


class UpscaleTooLarge(VideoqueueError):
    """The upscaled video would exceed the maximum output size."""

    status = 400


def output_size(width: int, height: int, factor: int) -> tuple[int, int]:
    """The output dimensions for `factor`, rounded down to even numbers as yuv420p needs."""
    return max(2, width * factor // 2 * 2), max(2, height * factor // 2 * 2)


def ensure_within_cap(width: int, height: int, factor: int, max_output_pixels: int) -> None:
    """Raise `UpscaleTooLarge` when `width`x`height` upscaled by `factor` is over the cap."""
    out_w, out_h = output_size(width, height, factor)
    if out_w * out_h > max_output_pixels:
        raise UpscaleTooLarge(
            f"Upscaling a {width}x{height} video by {factor}x gives {out_w}x{out_h} "
            f"({out_w * out_h} pixels), above the maximum of {max_output_pixels} pixels"
        )
