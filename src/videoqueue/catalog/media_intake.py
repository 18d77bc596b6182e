"""The loader and inspector `prepare_job` reads a request's media with, from settings and model."""

from __future__ import annotations

from videoqueue.catalog.entry import Family, ModelEntry
from videoqueue.catalog.media_rules import media_rules
from videoqueue.catalog.pricing import SourceVideo
from videoqueue.catalog.request import VideoRequest
from videoqueue.jobs.submit import check_upscale_input, source_video
from videoqueue.media.checks import MediaInspector, Sandbox
from videoqueue.media.fetch import FetchPolicy
from videoqueue.media.intake import MediaBlob, MediaLoader
from videoqueue.settings import Settings


def fetch_policy(settings: Settings) -> FetchPolicy:
    """Where and how media URLs may be fetched, as the operator configured it."""
    return FetchPolicy(
        allow_private_networks=settings.media_allow_private_networks,
        allowed_networks=tuple(settings.media_allowed_networks),
        connect_timeout_s=settings.media_fetch_connect_timeout_seconds,
        read_timeout_s=settings.media_fetch_read_timeout_seconds,
        total_timeout_s=settings.media_fetch_total_timeout_seconds,
        max_redirects=settings.media_fetch_max_redirects,
    )


def media_intake(
    settings: Settings, entry: ModelEntry, family: Family, sandbox: Sandbox | None = None
) -> tuple[MediaLoader, MediaInspector]:
    """A loader (data and http(s) URLs, capped per kind) and an inspector for `entry`'s rules
    (decoding in `sandbox`'s processes when given)."""
    rules = media_rules(entry, family, max_video_bytes=settings.media_max_video_bytes)
    return MediaLoader(rules, fetch_policy(settings)), MediaInspector(rules, sandbox)


def probe_source(
    settings: Settings,
    entry: ModelEntry,
    family: Family,
    request: VideoRequest,
    url: str,
    sandbox: Sandbox | None = None,
) -> SourceVideo:
    """Fetch and probe a quote's `video_url` as queue would (same limits), for its price."""
    load, inspector = media_intake(settings, entry, family, sandbox)
    facts = inspector.inspect(MediaBlob(field="video_url", data=load(url, "video_url")))
    check_upscale_input(entry, request, facts)
    return source_video(facts)
