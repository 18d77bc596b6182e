"""`POST /video/quote`: Venice's published prices, every model's price rule, the upscale quote's
key and inputs, and the quote being exactly what `/video/queue` charges."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.catalog.cases import (
    ALL_ASPECT_RATIOS,
    ALL_DURATIONS,
    ALL_RESOLUTIONS,
    detailed,
    entry_and_family,
    enum_issue,
    model_ids,
    mp4_data_url,
    plain,
    quoted,
    required_issue,
    spec_day_clock,
    table_settings,
    too_big_issue,
    type_issue,
    unlisted_value,
    valid_queue_body,
    valid_quote_body,
)
from tests.conftest import Env, build_env
from videoqueue.billing.models import LedgerEntry, LedgerKind
from videoqueue.catalog.entry import ModelEntry, PerSecondPrice

UPSCALE = "topaz-video-upscale"


@pytest.fixture(scope="module")
def shared_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    data_dir: Path = tmp_path_factory.mktemp("quote") / "data"
    yield from build_env(table_settings(data_dir), spec_day_clock())


def quote(env: Env, body: dict[str, Any], key: str | None = None) -> Any:
    return env.post("/video/quote", body, key)


def cents(usd: Decimal) -> float:
    return float(max(usd.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP), Decimal("0.01")))


def per_second_price(entry: ModelEntry, body: dict[str, Any]) -> float:
    """rate(resolution) x seconds, x the audio multiplier when audio is on and configurable."""
    rule = entry.price
    assert isinstance(rule, PerSecondPrice)
    rate = rule.rates.get(body.get("resolution", "*"), rule.rates.get("*"))
    assert rate is not None
    # A duration read from the input ("Auto") is estimated at 5 s without the file.
    seconds = "5" if body["duration"] == "Auto" else body["duration"].removesuffix("s")
    usd = Decimal(str(rate)) * Decimal(seconds)
    if entry.constraints.audio_configurable and body.get("audio", True):
        usd *= Decimal(str(rule.audio_multiplier))
    return cents(usd)


# -- Venice's published figures (spec §12, §11.3, §11.4) ----------------------------------

PUBLISHED = [
    # model, duration, resolution, audio, USD
    ("seedance-2-0-text-to-video-basic", "4s", "480p", False, 0.35),
    ("seedance-2-0-text-to-video-basic", "15s", "480p", False, 1.32),
    ("seedance-2-0-text-to-video-basic", "4s", "720p", False, 0.76),
    ("seedance-2-0-text-to-video-basic", "15s", "720p", False, 2.85),
    ("seedance-2-0-text-to-video-basic", "4s", "1080p", False, 1.88),
    ("seedance-2-0-text-to-video-basic", "15s", "1080p", False, 7.06),
    ("seedance-2-0-text-to-video-basic", "4s", "4k", False, 3.91),
    ("seedance-2-0-text-to-video-basic", "15s", "4k", False, 14.67),
    ("seedance-2-5-text-to-video-basic", "4s", "480p", False, 0.67),
    ("seedance-2-5-text-to-video-basic", "10s", "480p", False, 1.69),
    ("seedance-2-5-text-to-video-basic", "4s", "720p", False, 1.16),
    ("seedance-2-5-text-to-video-basic", "10s", "720p", False, 2.90),
    ("seedance-2-5-text-to-video-basic", "4s", "1080p", False, 2.86),
    ("seedance-2-5-text-to-video-basic", "10s", "1080p", False, 7.15),
    ("grok-imagine-text-to-video-private", "1s", "480p", True, 0.06),
    ("grok-imagine-text-to-video-private", "5s", "480p", True, 0.32),
    ("grok-imagine-text-to-video-private", "10s", "480p", True, 0.63),
    ("grok-imagine-text-to-video-private", "15s", "480p", True, 0.95),
    ("grok-imagine-text-to-video-private", "1s", "720p", True, 0.09),
    ("grok-imagine-text-to-video-private", "5s", "720p", True, 0.44),
    ("grok-imagine-text-to-video-private", "10s", "720p", True, 0.89),
    ("grok-imagine-text-to-video-private", "15s", "720p", True, 1.33),
    ("veo3.1-fast-text-to-video", "4s", "720p", False, 0.44),
    ("veo3.1-fast-text-to-video", "6s", "1080p", False, 0.66),
    ("veo3.1-fast-text-to-video", "8s", "1080p", False, 0.88),
    ("veo3.1-fast-text-to-video", "4s", "4k", False, 1.32),
    ("veo3.1-fast-text-to-video", "6s", "4k", False, 1.98),
    ("veo3.1-fast-text-to-video", "8s", "4k", False, 2.64),
    ("wan-2-7-text-to-video", "5s", "720p", False, 0.55),
    ("wan-2-7-text-to-video", "10s", "720p", False, 1.10),
    ("wan-2-7-text-to-video", "15s", "720p", False, 1.65),
    ("wan-2-7-text-to-video", "5s", "1080p", False, 0.70),
    ("wan-2-7-text-to-video", "10s", "1080p", False, 1.40),
    ("wan-2-7-text-to-video", "15s", "1080p", False, 2.10),
    ("wan-2-7-enhanced-text-to-video", "5s", "720p", True, 0.64),
    ("wan-2-7-enhanced-text-to-video", "10s", "720p", True, 1.29),
    ("wan-2-7-enhanced-text-to-video", "15s", "720p", True, 1.93),
    ("wan-2-7-enhanced-text-to-video", "5s", "1080p", True, 0.99),
    ("wan-2-7-enhanced-text-to-video", "10s", "1080p", True, 1.98),
    ("wan-2-7-enhanced-text-to-video", "15s", "1080p", True, 2.97),
    ("ltx-2-v2-3-fast-text-to-video", "6s", "1080p", False, 0.40),
    ("ltx-2-v2-3-fast-text-to-video", "20s", "1080p", False, 1.32),
    ("ltx-2-v2-3-fast-text-to-video", "6s", "1440p", False, 0.79),
    ("ltx-2-v2-3-fast-text-to-video", "20s", "1440p", False, 2.64),
    ("ltx-2-v2-3-fast-text-to-video", "6s", "2160p", False, 1.58),
    ("ltx-2-v2-3-fast-text-to-video", "20s", "2160p", False, 5.28),
    ("ltx-2-5-fast-text-to-video", "6s", "720p", False, 0.59),
    ("ltx-2-5-fast-text-to-video", "6s", "1080p", False, 0.86),
    ("ltx-2-5-fast-text-to-video", "6s", "1440p", False, 1.25),
    ("ltx-2-5-fast-text-to-video", "6s", "2160p", False, 1.98),
    ("ltx-2-5-fast-text-to-video", "20s", "720p", False, 1.98),
    ("ltx-2-5-fast-text-to-video", "20s", "1080p", False, 2.86),
    ("ltx-2-5-fast-text-to-video", "20s", "1440p", False, 4.18),
    ("ltx-2-5-fast-text-to-video", "20s", "2160p", False, 6.60),
    # Kling O3 R2V guide: $0.112/s silent, $0.140/s with audio (+25%).
    ("kling-o3-pro-reference-to-video", "10s", None, False, 1.12),
    ("kling-o3-pro-reference-to-video", "10s", None, True, 1.40),
    ("kling-o3-standard-reference-to-video", "10s", None, True, 1.40),
]


@pytest.mark.parametrize(("model", "duration", "resolution", "audio", "usd"), PUBLISHED)
def test_quote_matches_venices_published_price(
    shared_env: Env, model: str, duration: str, resolution: str | None, audio: bool, usd: float
) -> None:
    body: dict[str, Any] = {
        "model": model,
        "duration": duration,
        "audio": audio,
        "aspect_ratio": "16:9",
    }
    if resolution is not None:
        body["resolution"] = resolution
    response = quote(shared_env, body)
    assert (response.status_code, response.json()) == (200, {"quote": usd})


@pytest.mark.parametrize(
    ("input_height", "factor", "usd"),
    [
        (480, 2, 0.25),  # 480p x2 -> 960 lines: $0.025/s
        (720, 2, 1.00),  # 720p x2 -> 1440 lines: $0.10/s
        (360, 4, 1.00),  # 360p x4 -> 1440 lines
        (720, 1, 0.13),  # enhance only: 720 lines, $0.013/s
        (1080, 1, 0.25),
    ],
)
def test_upscale_quote_prices_the_output_tier(
    shared_env: Env, input_height: int, factor: int, usd: float
) -> None:
    body = {
        "model": UPSCALE,
        "duration": "10",
        "input_height": input_height,
        "upscale_factor": factor,
    }
    response = quote(shared_env, body, shared_env.make_key())
    assert (response.status_code, response.json()) == (200, {"quote": usd})


def test_upscale_quote_of_30_seconds_of_1080p(shared_env: Env) -> None:
    body = {"model": UPSCALE, "duration": "30s", "input_height": 1080, "upscale_factor": 2}
    assert quote(shared_env, body, shared_env.make_key()).json() == {"quote": 3.00}


def test_upscale_quote_without_input_height_assumes_a_1080_line_source(shared_env: Env) -> None:
    body = {"model": UPSCALE, "duration": "10"}  # factor 2 by default: 2160 lines
    assert quote(shared_env, body, shared_env.make_key()).json() == {"quote": 1.00}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-key"}])
def test_upscale_quote_needs_a_key(shared_env: Env, headers: dict[str, str]) -> None:
    response = shared_env.post(
        "/video/quote", {"model": UPSCALE, "duration": "10"}, headers=headers
    )
    assert (response.status_code, response.json()) == (401, {"error": "Authentication failed"})


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"duration": "Auto"},
            plain(
                'Quote an upscale with video_url, or give its duration in seconds ("10" or "10s")'
            ),
        ),
        ({"duration": "10", "resolution": "2x"}, plain("Use upscale_factor instead of resolution")),
        ({"duration": "ten"}, detailed(enum_issue(["duration"], ["Auto"], "ten"))),
        (
            {},
            plain(
                'Quote an upscale with video_url, or give its duration in seconds ("10" or "10s")'
            ),
        ),
        (
            {"duration": "10", "upscale_factor": 3},
            detailed(enum_issue(["upscale_factor"], [1, 2, 4], 3)),
        ),
        (
            {"duration": "10", "input_height": "720"},
            detailed(type_issue(["input_height"], "number", "string")),
        ),
        (
            {"duration": "10", "input_height": 0},
            detailed(
                {
                    "code": "too_small",
                    "minimum": 1,
                    "type": "number",
                    "inclusive": True,
                    "exact": False,
                    "path": ["input_height"],
                    "message": "Number must be greater than or equal to 1",
                }
            ),
        ),
        (
            {"duration": "301"},
            detailed(
                {
                    "code": "custom",
                    "path": ["duration"],
                    "message": "Expected a number of seconds greater than 0 and at most 300",
                }
            ),
        ),
    ],
)
def test_upscale_quote_rejects_like_venice(
    shared_env: Env, body: dict[str, Any], expected: dict[str, Any]
) -> None:
    response = quote(shared_env, {"model": UPSCALE, **body}, shared_env.make_key())
    assert (response.status_code, response.json()) == (400, expected)


# -- every model --------------------------------------------------------------------------


@pytest.mark.parametrize("model_id", model_ids())
def test_every_model_is_quoted_by_its_price_rule(shared_env: Env, model_id: str) -> None:
    entry, _ = entry_and_family(model_id)
    body = valid_quote_body(entry)
    key = shared_env.make_key() if entry.upscale else None
    response = quote(shared_env, body, key)
    assert response.status_code == 200, response.text
    # An upscale's body is 10 s of 720p, x2 -> 1440 lines at $0.10/s.
    expected = 1.00 if entry.upscale is not None else per_second_price(entry, body)
    assert response.json() == {"quote": expected}


@pytest.mark.parametrize("model_id", [m for m in model_ids() if m != UPSCALE])
def test_every_listed_value_is_quoted_and_others_refused(shared_env: Env, model_id: str) -> None:
    entry, family = entry_and_family(model_id)
    c = entry.constraints
    base = valid_quote_body(entry)
    durations = (*c.durations, *family.source_matched_durations)
    for duration in c.durations:
        assert quote(shared_env, {**base, "duration": duration}).status_code == 200, duration
    for resolution in c.resolutions:
        assert quote(shared_env, {**base, "resolution": resolution}).status_code == 200
    for ratio in c.aspect_ratios or ALL_ASPECT_RATIOS:  # any ratio where the model has none
        assert quote(shared_env, {**base, "aspect_ratio": ratio}).status_code == 200, ratio
    wrong = unlisted_value(durations, ALL_DURATIONS)
    response = quote(shared_env, {**base, "duration": wrong})
    assert (response.status_code, response.json()) == (
        400,
        detailed(enum_issue(["duration"], durations, wrong)),
    )
    response = quote(shared_env, {k: v for k, v in base.items() if k != "duration"})
    assert (response.status_code, response.json()) == (
        400,
        detailed(required_issue(["duration"], quoted(durations))),
    )
    if entry.aspect_ratio_required:  # priced by pixels: the ratio is needed (spec §5)
        response = quote(shared_env, {k: v for k, v in base.items() if k != "aspect_ratio"})
        assert (response.status_code, response.json()) == (
            400,
            detailed(required_issue(["aspect_ratio"], quoted(c.aspect_ratios))),
        )
    resolutions = c.resolutions or ALL_RESOLUTIONS
    response = quote(shared_env, {**base, "resolution": "8k"})
    assert (response.status_code, response.json()) == (
        400,
        detailed(enum_issue(["resolution"], resolutions, "8k")),
    )
    if c.aspect_ratios:
        ratios = (*c.aspect_ratios, *family.source_matched_aspect_ratios)
        wrong_ratio = unlisted_value(ratios, ALL_ASPECT_RATIOS)
        response = quote(shared_env, {**base, "aspect_ratio": wrong_ratio})
        assert (response.status_code, response.json()) == (
            400,
            detailed(enum_issue(["aspect_ratio"], ratios, wrong_ratio)),
        )


def test_quote_tolerates_fields_it_does_not_price(shared_env: Env) -> None:
    body = {
        "model": "wan-2.6-image-to-video",
        "prompt": "quote",
        "duration": "5s",
        "resolution": "720p",
        "image_url": "https://example.org/x.png",
        "upscale_factor": 2,
        "bitrate_mode": "high",
    }
    assert quote(shared_env, body).json() == {"quote": 0.63}  # 0.10 x 5 x 1.25 (audio)


def test_audio_off_drops_the_surcharge_only_where_audio_is_configurable(shared_env: Env) -> None:
    toggle = {"model": "wan-2.6-text-to-video", "duration": "5s", "resolution": "720p"}
    assert quote(shared_env, {**toggle, "audio": False}).json() == {"quote": 0.50}
    assert quote(shared_env, {**toggle, "audio": True}).json() == {"quote": 0.63}
    always = {"model": "wan-2-7-enhanced-text-to-video", "duration": "5s", "resolution": "720p"}
    assert quote(shared_env, {**always, "audio": False}).json() == {"quote": 0.64}


def test_quote_without_a_resolution_uses_the_models_default(shared_env: Env) -> None:
    body = {"model": "ltx-2-v2-3-fast-text-to-video", "duration": "6s", "audio": False}
    assert quote(shared_env, body).json() == {"quote": 0.40}  # 1080p, its lowest


# -- reference videos ---------------------------------------------------------------------

R2V_25 = "seedance-2-5-reference-to-video-basic"


def test_reference_video_seconds_are_billed_with_the_output(shared_env: Env) -> None:
    body = {"model": R2V_25, "duration": "5s", "resolution": "720p", "audio": False}
    assert quote(shared_env, body).json() == {"quote": 1.45}  # 0.29 x 5
    with_videos = {**body, "reference_video_total_duration": 7.5}
    assert quote(shared_env, with_videos).json() == {"quote": 3.63}  # 0.29 x (7.5 + 5)


def test_source_matched_duration_bills_the_rounded_up_source_length(shared_env: Env) -> None:
    body = {
        "model": R2V_25,
        "duration": "-1",
        "resolution": "720p",
        "audio": False,
        "reference_video_total_duration": 9.2,
    }
    assert quote(shared_env, body).json() == {"quote": 5.57}  # 0.29 x (9.2 + 10)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"duration": "-1"},
            "duration '-1' follows the source clip: quote it with reference_video_total_duration",
        ),
        (
            {"duration": "auto"},
            "duration 'auto' follows the source clip: quote it with reference_video_total_duration",
        ),
        (
            {"aspect_ratio": "adaptive"},
            "aspect_ratio 'adaptive' follows the source clip: quote it "
            "with reference_video_total_duration",
        ),
    ],
)
def test_source_matched_quote_needs_the_reference_length(
    shared_env: Env, change: dict[str, Any], message: str
) -> None:
    body = {"model": R2V_25, "duration": "5s", **change}
    response = quote(shared_env, body)
    assert (response.status_code, response.json()) == (400, plain(message))


def test_reference_video_total_duration_must_be_a_non_negative_number(shared_env: Env) -> None:
    body = {"model": R2V_25, "duration": "5s", "reference_video_total_duration": -1}
    response = quote(shared_env, body)
    assert (response.status_code, response.json()) == (
        400,
        detailed(
            {
                "code": "too_small",
                "minimum": 0,
                "type": "number",
                "inclusive": True,
                "exact": False,
                "path": ["reference_video_total_duration"],
                "message": "Number must be greater than or equal to 0",
            }
        ),
    )


R2V_20 = "seedance-2-0-reference-to-video-basic"


@pytest.mark.parametrize(
    ("model_id", "cap"),
    [
        (R2V_20, 15),  # Seedance 2.0's reference videos: 15 s in all
        (R2V_25, 30),
        ("wan-2.6-text-to-video", 150),  # no family cap: the request schema's maximum
    ],
)
def test_reference_video_total_duration_is_held_to_the_schema_and_family_caps(
    shared_env: Env, model_id: str, cap: int
) -> None:
    body = {"model": model_id, "duration": "5s", "reference_video_total_duration": cap}
    assert quote(shared_env, body).status_code == 200
    response = quote(shared_env, {**body, "reference_video_total_duration": cap + 0.5})
    assert (response.status_code, response.json()) == (
        400,
        detailed(too_big_issue(["reference_video_total_duration"], cap, "number")),
    )
    assert f'"maximum":{cap},' in response.text  # JavaScript's 15, not 15.0


# -- the quote is the charge --------------------------------------------------------------

CHARGED_SAMPLE = [
    "seedance-2-0-text-to-video-basic",
    "seedance-2-0-reference-to-video-basic",
    "wan-2.6-image-to-video",
    "kling-o3-pro-reference-to-video",
    "ltx-2-5-pro-text-to-video",
    "grok-imagine-reference-to-video-private",
    "veo3-full-image-to-video",
    "pixverse-c1-transition",
    "minimax-h3-reference-to-video",
    "happyhorse-1-1-image-to-video",
]


@pytest.mark.parametrize("model_id", CHARGED_SAMPLE)
def test_queue_charges_exactly_the_quote(shared_env: Env, model_id: str) -> None:
    entry, _ = entry_and_family(model_id)
    body = valid_queue_body(entry)
    quoted_usd = quote(shared_env, body).json()["quote"]
    response = shared_env.post("/video/queue", body, shared_env.make_key())
    assert response.status_code == 200, response.text
    assert charged_micros(shared_env, response.json()["queue_id"]) == [
        round(quoted_usd * 1_000_000)
    ]


def charged_micros(env: Env, queue_id: str) -> list[int]:
    """The CHARGE rows the ledger holds for a job."""
    with env.db.transaction() as session:
        rows = session.scalars(
            select(LedgerEntry).where(
                LedgerEntry.job_id == queue_id, LedgerEntry.kind == LedgerKind.CHARGE
            )
        ).all()
        return [abs(row.amount_micros) for row in rows]


def test_reference_videos_are_charged_as_quoted(shared_env: Env) -> None:
    body = {
        "model": R2V_25,
        "prompt": "Extend <Video 1>",
        "duration": "5s",
        "resolution": "720p",
        "aspect_ratio": "16:9",
        "reference_video_urls": [mp4_data_url(3.0)],
    }
    quoted_usd = quote(shared_env, {**body, "reference_video_total_duration": 3}).json()["quote"]
    assert quoted_usd == 2.32  # 0.29 x (3 + 5)
    response = shared_env.post("/video/queue", body, shared_env.make_key())
    assert response.status_code == 200, response.text
    assert charged_micros(shared_env, response.json()["queue_id"]) == [2_320_000]
