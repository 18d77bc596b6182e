"""Prices: a pure function of the model's rule, the request and what probing its media found.

`/video/quote` and `/video/queue` both call `price_micros`, so the quote is the charge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from videoqueue.catalog.entry import ModelEntry, PerSecondPrice, UpscalePrice
from videoqueue.catalog.request import DEFAULT_SECONDS, VideoRequest

CENT = Decimal("0.01")
MICROS = Decimal(1_000_000)
# Without a probed file or `input_height`, an upscale quote assumes a 1080-line source.
CONSERVATIVE_INPUT_HEIGHT = 1080


@dataclass(frozen=True)
class SourceVideo:
    """What a probe of the input video says (for upscale and source-matched durations)."""

    duration_s: float
    height: int
    fps: float


def output_seconds(
    request: VideoRequest, source: SourceVideo | None, reference_seconds: float | None
) -> float:
    """Seconds of video the job makes: the asked duration, else the source's, else 5."""
    if request.duration_seconds is not None:
        return request.duration_seconds
    if source is not None:
        return source.duration_s
    if reference_seconds:  # `-1`/`auto`: as long as the reference clips
        return float(math.ceil(reference_seconds))
    return DEFAULT_SECONDS


def _per_second(
    rule: PerSecondPrice,
    entry: ModelEntry,
    request: VideoRequest,
    source: SourceVideo | None,
    reference_seconds: float | None,
) -> Decimal:
    seconds = Decimal(str(output_seconds(request, source, reference_seconds)))
    rates = rule.rates
    if reference_seconds and rule.reference_video_rates:
        # BytePlus' "input with video" tier: (input + output) seconds at its own rate.
        rates = rule.reference_video_rates
        seconds += Decimal(str(reference_seconds))
    key = request.resolution if request.resolution in rates else "*"
    rate = Decimal(str(rates.get(key, max(rates.values()))))
    price = rate * seconds
    if request.audio and entry.constraints.audio_configurable:
        price *= Decimal(str(rule.audio_multiplier))
    return price


def _upscale(
    rule: UpscalePrice, entry: ModelEntry, request: VideoRequest, source: SourceVideo | None
) -> Decimal:
    default_factor = entry.upscale.default_factor if entry.upscale else 2
    factor = request.upscale_factor or default_factor
    height = source.height if source else request.input_height or CONSERVATIVE_INPUT_HEIGHT
    output_height = height * factor
    rate = Decimal(str(rule.tiers[-1].rate))
    for tier in rule.tiers:
        if tier.max_height is None or output_height <= tier.max_height:
            rate = Decimal(str(tier.rate))
            break
    if source is not None and source.fps > rule.high_fps_threshold:
        rate *= Decimal(str(rule.high_fps_multiplier))
    seconds = source.duration_s if source else output_seconds(request, None, None)
    return rate * Decimal(str(seconds))


def price_micros(
    entry: ModelEntry,
    request: VideoRequest,
    source: SourceVideo | None = None,
    reference_seconds: float | None = None,
) -> int:
    """The price in micro-USD, rounded to whole cents (at least one cent).

    `source` is the probed input video (upscale, video-to-video); `reference_seconds` the
    probed total length of the reference videos, which on a quote comes from the body's
    `reference_video_total_duration` instead.
    """
    rule = entry.price
    if reference_seconds is None:
        reference_seconds = request.reference_video_total_duration
    if rule.rule == "per_generation":
        usd = Decimal(str(rule.amount))
    elif rule.rule == "upscale":
        usd = _upscale(rule, entry, request, source)
    else:
        usd = _per_second(rule, entry, request, source, reference_seconds)
    cents = max(usd.quantize(CENT, rounding=ROUND_HALF_UP), CENT)
    return int(cents * MICROS)


def micros_to_usd(micros: int) -> float:
    return float(Decimal(micros) / MICROS)
