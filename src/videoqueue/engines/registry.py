"""Engines by name, each built in its own warm child process when a worker starts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from videoqueue.engines.base import Capabilities, JobKind
from videoqueue.engines.diffusers_families import family_capabilities
from videoqueue.engines.isolation import IsolatedEngine, factory_parts

FACTORIES = {
    "preview": "videoqueue.engines.preview:PreviewEngine",
    "upscale": "videoqueue.engines.upscale:UpscaleEngine",
    "realesrgan": "videoqueue.engines.realesrgan:RealEsrganEngine",
}
"""Engine name → `module:Factory`, imported only inside the engine's child process."""

EVERY_KIND = Capabilities(kinds=frozenset(JobKind), audio=True, audio_input=True)
UPSCALER = Capabilities(kinds=frozenset({JobKind.UPSCALE}), audio=False)

CAPABILITIES = {
    "preview": Capabilities(
        kinds=frozenset(JobKind) - {JobKind.UPSCALE}, audio=True, audio_input=True
    ),
    "upscale": UPSCALER,
    "realesrgan": UPSCALER,
}
"""What each built-in engine can do, declared here so that checking a catalogue imports
no engine."""

DIFFUSERS = "videoqueue.engines.diffusers"
OPENAI_VIDEOS = "videoqueue.engines.openai_videos"
TEXT_AND_IMAGE = Capabilities(kinds=frozenset({JobKind.TEXT, JobKind.IMAGE}), audio=False)
"""OpenAI's videos API takes a prompt and at most one image, its first frame."""


def engine_factories(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The built-in engines and an operator's own (the `engines` setting), which may
    replace a built-in one of the same name."""
    return {**FACTORIES, **(extra or {})}


def capabilities(name: str, factory: str) -> Capabilities:
    """What the engine `name` built from `factory` can do: a built-in engine's declaration,
    the family's of a diffusers factory string (`…diffusers:load?family=wan21&…`), text and
    image for the `openai_videos` engine, and every kind for an operator's own engine, even
    under a built-in name. Raises `ValueError` for a
    diffusers family this build does not have, or a query that cannot be read."""
    if factory == FACTORIES.get(name):
        return CAPABILITIES[name]
    module, _, options = factory_parts(factory)
    if module == DIFFUSERS or module.startswith(f"{DIFFUSERS}."):
        return family_capabilities(options.get("family", ""))
    if module == OPENAI_VIDEOS:
        return TEXT_AND_IMAGE
    return EVERY_KIND


class UnknownEngine(ValueError):
    """A catalogue binds a model to an engine this build does not have."""


def build_engines(
    names: Iterable[str], factories: Mapping[str, str] = FACTORIES, device: str | None = None
) -> dict[str, IsolatedEngine]:
    """Each named engine, isolated in a child process (started by its `setup`), on `device`
    where its factory takes one."""
    engines: dict[str, IsolatedEngine] = {}
    for name in names:
        if name not in factories:
            raise UnknownEngine(f"no engine named {name!r}; known: {', '.join(factories)}")
        engines[name] = IsolatedEngine(name, factories[name], device)
    return engines
