"""What each family of the diffusers engine can do, as data.

It lives outside `engines/diffusers/`, whose package imports torch: the API process checks its
catalogue against this table and must not. Each family's recipe takes its grid from here.

Limits are what the model cards publish, not what the pipelines would accept: Wan 2.1 and
Wan 2.2 A14B are trained at 480p and 720p with 81 frames (the Wan-AI model cards), Wan 2.2
TI2V-5B at 720p with 121 frames at 24 fps (its model card). For LTX-2 the technical report
(arXiv 2601.03233) gives clips of up to 20 s and 4K; both are taken as generous limits.
"""

from __future__ import annotations

from videoqueue.engines.base import Capabilities, FrameGrid, JobKind

TEXT_AND_IMAGE = frozenset({JobKind.TEXT, JobKind.IMAGE})

WAN21_GRID = FrameGrid(fps=16, frame_step=4, size_multiple=16)
WAN22_GRID = FrameGrid(fps=16, frame_step=4, size_multiple=16)
WAN22_TI2V_GRID = FrameGrid(fps=24, frame_step=4, size_multiple=32)
LTX2_GRID = FrameGrid(fps=24, frame_step=8, size_multiple=32, min_side=64)
"""A side of 32 is one latent pixel, which LTX-2's VAE decoder cannot pad (reflect padding)."""

FAMILIES: dict[str, Capabilities] = {
    # T2V 1.3B and 14B, I2V 480p and 720p, FLF2V: one family, whose folder decides the kind.
    "wan21": Capabilities(
        kinds=TEXT_AND_IMAGE | {JobKind.FIRST_LAST_FRAME},
        audio=False,
        grid=WAN21_GRID,
        max_lines=720,
        max_frames=81,
    ),
    # A14B T2V and I2V, two experts.
    "wan22": Capabilities(
        kinds=TEXT_AND_IMAGE, audio=False, grid=WAN22_GRID, max_lines=720, max_frames=81
    ),
    "wan22-ti2v": Capabilities(
        kinds=TEXT_AND_IMAGE, audio=False, grid=WAN22_TI2V_GRID, max_lines=720, max_frames=121
    ),
    "ltx2": Capabilities(
        kinds=TEXT_AND_IMAGE, audio=True, grid=LTX2_GRID, max_lines=2160, max_frames=481
    ),
}
"""Family name (the `family` of a diffusers factory string) → what it can do."""


class UnknownFamily(ValueError):
    """A diffusers engine names a family this build does not have."""


def family_capabilities(family: str) -> Capabilities:
    """What `family` can do. Raises `UnknownFamily`, naming it and the known ones."""
    if family not in FAMILIES:
        raise UnknownFamily(f"unknown diffusers family {family!r}; known: {', '.join(FAMILIES)}")
    return FAMILIES[family]
