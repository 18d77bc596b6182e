"""Prices: a pure function of the model's rule, the request and the probed source video.

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


def _seconds(request: VideoRequest, source: SourceVideo | None) -> float:
    if request.duration_seconds is not None:
        return request.duration_seconds
    if source is not None:
        return source.duration_s
    if request.reference_video_total_duration is not None:
        return float(math.ceil(request.reference_video_total_duration))
    return DEFAULT_SECONDS


def _per_second(rule: PerSecondPrice, entry: ModelEntry, request: VideoRequest,
                source: SourceVideo | None, reference_seconds: float) -> Decimal:
    key = request.resolution if request.resolution in rule.rates else "*"
    rates = rule.rates
    seconds = Decimal(str(_seconds(request, source)))
    if reference_seconds and rule.reference_video_rates:
        rates = rule.reference_video_rates
        seconds += Decimal(str(reference_seconds))
    rate = Decimal(str(rates.get(key, max(rates.values()))))
    price = rate * seconds
    if request.audio and entry.constraints.audio_configurable:
        price *= Decimal(str(rule.audio_multiplier))
    return price


def _upscale(rule: UpscalePrice, request: VideoRequest, source: SourceVideo | None) -> Decimal:
    factor = request.upscale_factor or 2
    height = source.height if source else request.input_height or CONSERVATIVE_INPUT_HEIGHT
    output_height = height * factor
    rate = Decimal(str(rule.tiers[-1].rate))
    for tier in rule.tiers:
        if tier.max_height is None or output_height <= tier.max_height:
            rate = Decimal(str(tier.rate))
            break
    if source is not None and source.fps > rule.high_fps_threshold:
        rate *= Decimal(str(rule.high_fps_multiplier))
    seconds = source.duration_s if source else _seconds(request, None)
    return rate * Decimal(str(seconds))


def price_micros(entry: ModelEntry, request: VideoRequest, source: SourceVideo | None = None,
                 reference_seconds: float = 0.0) -> int:
    """The price in micro-USD, rounded to whole cents (at least one cent)."""
    rule = entry.price
    if rule.rule == "per_generation":
        usd = Decimal(str(rule.amount))
    elif rule.rule == "upscale":
        usd = _upscale(rule, request, source)
    else:
        ref = reference_seconds or request.reference_video_total_duration or 0.0
        usd = _per_second(rule, entry, request, source, ref)
    cents = max(usd.quantize(CENT, rounding=ROUND_HALF_UP), CENT)
    return int(cents * MICROS)


def micros_to_usd(micros: int) -> float:
    return float(Decimal(micros) / MICROS)
