"""A model's sizes and seconds in the OpenAI API's terms, from its catalogue constraints."""

from __future__ import annotations

from videoqueue.catalog.catalog import load_catalog
from videoqueue.catalog.frame_sizes import (
    Shape,
    default_duration,
    offered_seconds,
    offered_sizes,
)

CATALOG = load_catalog()


def _sizes(model: str) -> dict[str, Shape]:
    entry = CATALOG.get(model)
    return offered_sizes(entry, CATALOG.family(entry))


def test_each_resolution_and_aspect_ratio_gives_its_frame_size() -> None:
    assert _sizes("wan-2.2-a14b-text-to-video") == {
        "1280x720": Shape("720p", "16:9"),
        "404x720": Shape("720p", "9:16"),
        "720x720": Shape("720p", "1:1"),
        "1032x580": Shape("580p", "16:9"),
        "326x580": Shape("580p", "9:16"),
        "580x580": Shape("580p", "1:1"),
        "854x480": Shape("480p", "16:9"),
        "270x480": Shape("480p", "9:16"),
        "480x480": Shape("480p", "1:1"),
    }


def test_a_model_without_resolutions_or_ratios_offers_its_default_frame() -> None:
    assert _sizes("kling-v3-pro-image-to-video") == {"1280x720": Shape(None, None)}
    assert set(_sizes("kling-v3-pro-text-to-video")) == {"1280x720", "404x720", "720x720"}


def test_two_resolutions_of_one_size_are_served_by_the_first_listed() -> None:
    assert _sizes("sora-2-pro-text-to-video")["1920x1080"] == Shape("1080p", "16:9")


def test_an_upscale_model_offers_no_size() -> None:
    assert _sizes("topaz-video-upscale") == {}


def test_seconds_are_the_whole_second_durations() -> None:
    assert offered_seconds(CATALOG.get("veo3-fast-text-to-video")) == {
        "4": "4s",
        "6": "6s",
        "8": "8s",
    }
    assert default_duration(CATALOG.get("veo3-fast-text-to-video")) == "4s"
    assert default_duration(CATALOG.get("wan-2.2-a14b-text-to-video")) == "5s"
