"""Engines by name, built only when a worker needs them (their imports can be heavy)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from videoqueue.engines.base import Engine


def _preview() -> Engine:
    from videoqueue.engines.preview import PreviewEngine

    return PreviewEngine()


def _upscale() -> Engine:
    from videoqueue.engines.upscale import UpscaleEngine

    return UpscaleEngine()


def _realesrgan() -> Engine:
    from videoqueue.engines.realesrgan import RealEsrganEngine

    return RealEsrganEngine()


FACTORIES: dict[str, Callable[[], Engine]] = {
    "preview": _preview, "upscale": _upscale, "realesrgan": _realesrgan,
}


def build_engines(names: Iterable[str]) -> dict[str, Engine]:
    """One instance of each named engine. Raises `KeyError` for an unknown name."""
    return {name: FACTORIES[name]() for name in names}
