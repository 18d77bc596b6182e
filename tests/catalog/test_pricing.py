"""`price_micros` on what only probing finds: the source video's length, height and rate, and
the reference clips' total length (spec §11.3, §5)."""

from __future__ import annotations

import pytest

from tests.catalog.cases import catalog
from videoqueue.catalog.entry import PerGenerationPrice
from videoqueue.catalog.pricing import SourceVideo, price_micros
from videoqueue.catalog.request import VideoRequest

UPSCALE = catalog().get("topaz-video-upscale")


@pytest.mark.parametrize(
    ("seconds", "height", "fps", "factor", "usd"),
    [
        (10, 480, 30, 2, 0.25),  # spec §11.3 examples
        (10, 720, 30, 2, 1.00),
        (30, 1080, 30, 2, 3.00),
        (10, 360, 24, 4, 1.00),
        (10, 480, 60, 2, 0.50),  # x2 above 48 fps
        (0.2, 360, 24, 1, 0.01),  # never less than a cent
    ],
)
def test_upscale_is_priced_from_the_probed_source(
    seconds: float, height: int, fps: float, factor: int, usd: float
) -> None:
    request = VideoRequest(model=UPSCALE.id, upscale_factor=factor)
    source = SourceVideo(duration_s=seconds, height=height, fps=fps)
    assert price_micros(UPSCALE, request, source) == round(usd * 1_000_000)


def test_a_duration_from_the_input_is_the_sources() -> None:
    v2v = catalog().get("wan-2-7-video-to-video")
    request = VideoRequest(model=v2v.id, duration="Auto", resolution="1080p")
    assert price_micros(v2v, request, SourceVideo(duration_s=8, height=720, fps=24)) == 1_120_000


def test_probed_reference_seconds_win_over_the_declared_total() -> None:
    r2v = catalog().get("seedance-2-5-reference-to-video-basic")
    request = VideoRequest(
        model=r2v.id, duration="5s", resolution="720p", reference_video_total_duration=100.0
    )
    assert price_micros(r2v, request, reference_seconds=5.0) == 2_900_000  # 0.29 x (5 + 5)
    assert price_micros(r2v, request, reference_seconds=0.0) == 1_450_000  # no videos after all


def test_per_generation_price() -> None:
    entry = (
        catalog()
        .get("wan-2-7-text-to-video")
        .model_copy(update={"price": PerGenerationPrice(rule="per_generation", amount=0.25)})
    )
    request = VideoRequest(model=entry.id, duration="1 gen")
    assert price_micros(entry, request) == 250_000
