"""The media rules a model's catalogue entry implies (spec §4.1, §11.1, §11.2)."""

from __future__ import annotations

from dataclasses import replace

from videoqueue.catalog.entry import ClipLimit, Family, ModelEntry
from videoqueue.media.rules import ClipRule, ImageRule, MediaRules


def _clip(rule: ClipRule, limit: ClipLimit | None) -> ClipRule:
    if limit is None:
        return rule
    return replace(
        rule,
        max_bytes=limit.max_bytes,
        min_seconds=limit.min_seconds,
        max_seconds=limit.max_seconds,
        total_seconds=limit.total_seconds,
    )


def media_rules(entry: ModelEntry, family: Family, *, max_video_bytes: int) -> MediaRules:
    """What every media field of a request for `entry` must satisfy."""
    c = entry.constraints
    defaults = MediaRules()
    video_seconds = entry.upscale.max_input_seconds if entry.upscale else defaults.video.max_seconds
    return MediaRules(
        image=ImageRule(
            min_short_side=c.reference_image_min_short_side_pixels,
            min_aspect=c.reference_image_min_aspect_ratio,
            max_aspect=c.reference_image_max_aspect_ratio,
        ),
        reference_audio=_clip(defaults.reference_audio, family.reference_audios),
        video=replace(defaults.video, max_bytes=max_video_bytes, max_seconds=video_seconds),
        reference_video=_clip(defaults.reference_video, family.reference_videos),
        audio_url_is_reference=family.audio_url_is_reference,
        detect_faces=family.face_consent,
        source_clip_seconds=family.source_clip_seconds,
    )
