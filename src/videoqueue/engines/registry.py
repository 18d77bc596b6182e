"""Engines by name, each built in its own warm child process when a worker first needs it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from videoqueue.engines.base import Engine
from videoqueue.engines.isolation import IsolatedEngine

FACTORIES = {
    "preview": "videoqueue.engines.preview:PreviewEngine",
    "upscale": "videoqueue.engines.upscale:UpscaleEngine",
    "realesrgan": "videoqueue.engines.realesrgan:RealEsrganEngine",
}
"""Engine name → `module:Factory`, imported only inside the engine's child process."""


def engine_factories(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The built-in engines and an operator's own (the `engines` setting), which may
    replace a built-in one of the same name."""
    return {**FACTORIES, **(extra or {})}


class UnknownEngine(ValueError):
    """A catalogue binds a model to an engine this build does not have."""


def build_engines(
    names: Iterable[str], factories: Mapping[str, str] = FACTORIES
) -> dict[str, Engine]:
    """Each named engine, isolated in a child process (started on its first job)."""
    engines: dict[str, Engine] = {}
    for name in names:
        if name not in factories:
            raise UnknownEngine(f"no engine named {name!r}; known: {', '.join(factories)}")
        engines[name] = IsolatedEngine(name, factories[name])
    return engines
