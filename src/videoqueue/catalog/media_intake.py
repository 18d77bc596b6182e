"""Reading a request's media as its model's rules say: the loader, the inspector, the probe."""

from __future__ import annotations

from dataclasses import dataclass

from videoqueue.catalog.entry import Family, ModelEntry
from videoqueue.catalog.media_rules import media_rules
from videoqueue.catalog.pricing import SourceVideo
from videoqueue.catalog.request import VideoRequest
from videoqueue.media.checks import MediaFacts, MediaInspector, Sandbox
from videoqueue.media.fetch import FetchPolicy
from videoqueue.media.intake import MediaBlob, MediaLoader
from videoqueue.media.scaling import ensure_within_cap


def source_video(facts: MediaFacts) -> SourceVideo:
    """The probed `video_url` as pricing sees it."""
    return SourceVideo(
        duration_s=facts.duration_s or 0.0, height=facts.height or 0, fps=facts.fps or 0.0
    )


def check_upscale_input(entry: ModelEntry, request: VideoRequest, facts: MediaFacts) -> None:
    """Refuse (400) an upscale whose output would exceed the model's cap, before any charge."""
    if entry.upscale is None or not (facts.width and facts.height):
        return
    factor = request.upscale_factor or entry.upscale.default_factor
    ensure_within_cap(facts.width, facts.height, factor, entry.upscale.max_output_pixels)


@dataclass(frozen=True)
class MediaIntake:
    """How media URLs are fetched and where files are decoded (never in the API process)."""

    fetch: FetchPolicy
    max_video_bytes: int
    sandbox: Sandbox | None = None

    def for_model(self, entry: ModelEntry, family: Family) -> tuple[MediaLoader, MediaInspector]:
        """A loader (data and http(s) URLs, capped per kind) and an inspector for its rules."""
        rules = media_rules(entry, family, max_video_bytes=self.max_video_bytes)
        return MediaLoader(rules, self.fetch), MediaInspector(rules, self.sandbox)

    def probe_source(
        self, entry: ModelEntry, family: Family, request: VideoRequest, url: str
    ) -> SourceVideo:
        """Fetch and probe a quote's `video_url` as queue would (same limits), for its price."""
        load, inspector = self.for_model(entry, family)
        facts = inspector.inspect(MediaBlob(field="video_url", data=load(url, "video_url")))
        check_upscale_input(entry, request, facts)
        return source_video(facts)
