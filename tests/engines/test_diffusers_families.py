"""The diffusers families' declared grids and limits, read without importing torch."""

from __future__ import annotations

import pytest

from videoqueue.engines.base import JobKind
from videoqueue.engines.diffusers_families import FAMILIES, UnknownFamily, family_capabilities


@pytest.mark.parametrize(
    ("family", "seconds", "frames"),
    [("wan21", 5.0, 81), ("wan22", 5.0, 81), ("wan22-ti2v", 5.0, 121), ("ltx2", 20.0, 481)],
)
def test_each_familys_longest_clip_is_the_one_its_model_card_publishes(
    family: str, seconds: float, frames: int
) -> None:
    can = FAMILIES[family]
    assert can.grid is not None
    assert can.grid.frame_count(seconds) == frames == can.max_frames


def test_frames_follow_each_familys_rule_and_sizes_its_multiple() -> None:
    ltx, ti2v = FAMILIES["ltx2"].grid, FAMILIES["wan22-ti2v"].grid
    assert ltx is not None and ti2v is not None
    assert [ltx.frame_count(s) for s in (1.0, 5.0, 0.1)] == [25, 121, 1]
    assert ti2v.frame_size(1280, 720) == (1280, 704)
    assert ltx.frame_size(854, 480) == (864, 480)


def test_only_ltx2_makes_sound_and_only_wan21_does_first_last_frame() -> None:
    assert {name for name, can in FAMILIES.items() if can.audio} == {"ltx2"}
    assert {name for name, can in FAMILIES.items() if JobKind.FIRST_LAST_FRAME in can.kinds} == {
        "wan21"
    }


def test_an_unknown_family_is_named_with_the_known_ones() -> None:
    with pytest.raises(UnknownFamily, match="'wan99'; known: wan21, wan22, wan22-ti2v, ltx2"):
        family_capabilities("wan99")
