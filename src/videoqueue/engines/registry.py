"""Engines by name, each built in its own warm child process when a worker first needs it."""

from __future__ import annotations

from collections.abc import Iterable

from videoqueue.engines.base import Engine
from videoqueue.engines.isolation import IsolatedEngine

FACTORIES = {
    "preview": "videoqueue.engines.preview:PreviewEngine",
    "upscale": "videoqueue.engines.upscale:UpscaleEngine",
    "realesrgan": "videoqueue.engines.realesrgan:RealEsrganEngine",
}
"""Engine name → `module:Factory`, imported only inside the engine's child process."""


class UnknownEngine(ValueError):
    """A catalogue binds a model to an engine this build does not have."""


def build_engines(names: Iterable[str]) -> dict[str, Engine]:
    """Each named engine, isolated in a child process (started on its first job)."""
    engines: dict[str, Engine] = {}
    for name in names:
        if name not in FACTORIES:
            raise UnknownEngine(f"no engine named {name!r}; known: {', '.join(FACTORIES)}")
        engines[name] = IsolatedEngine(name, FACTORIES[name])
    return engines
