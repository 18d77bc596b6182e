"""Engines by name, each built in its own warm child process when a worker starts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from videoqueue.engines.base import Capabilities, JobKind
from videoqueue.engines.isolation import IsolatedEngine

FACTORIES = {
    "preview": "videoqueue.engines.preview:PreviewEngine",
    "upscale": "videoqueue.engines.upscale:UpscaleEngine",
    "realesrgan": "videoqueue.engines.realesrgan:RealEsrganEngine",
}
"""Engine name → `module:Factory`, imported only inside the engine's child process."""

EVERY_KIND = Capabilities(kinds=frozenset(JobKind), audio=True)
UPSCALER = Capabilities(kinds=frozenset({JobKind.UPSCALE}), audio=False)

CAPABILITIES = {
    "preview": Capabilities(kinds=frozenset(JobKind) - {JobKind.UPSCALE}, audio=True),
    "upscale": UPSCALER,
    "realesrgan": UPSCALER,
}
"""What each built-in engine can do, declared here so that checking a catalogue imports
no engine. An engine not named here (an operator's own) is trusted with every kind."""


def engine_factories(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The built-in engines and an operator's own (the `engines` setting), which may
    replace a built-in one of the same name."""
    return {**FACTORIES, **(extra or {})}


def engine_kinds(factories: Mapping[str, str]) -> dict[str, frozenset[str]]:
    """Engine name → the job kinds it can do, for each of `factories` (`load_catalog`'s
    `engines`); an operator's factory, even under a built-in name, may do every kind."""
    return {
        name: frozenset(
            (
                CAPABILITIES.get(name, EVERY_KIND) if factory == FACTORIES.get(name) else EVERY_KIND
            ).kinds
        )
        for name, factory in factories.items()
    }


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
