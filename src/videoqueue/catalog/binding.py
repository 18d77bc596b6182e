"""Whether a model's entry fits the engine it is bound to: kinds, rate, lengths, sizes, sound.

What `/models` advertises for a model is what its engine will render, up to the documented
mapping onto the engine's grid (nearest frame count and size multiple); an entry that
advertises more is refused when the catalogue loads, so a server or worker fails at start
rather than a job at run time, or a request silently getting less.
"""

from __future__ import annotations

from collections.abc import Mapping

from videoqueue.catalog.entry import ModelEntry, job_kinds
from videoqueue.catalog.geometry import DEFAULT_LINES, LINES
from videoqueue.catalog.request import duration_seconds
from videoqueue.engines.base import Capabilities
from videoqueue.engines.registry import capabilities

AUDIO_INPUTS = ("audio_url",)
"""Media fields whose file the engine must use as sound (reference audios are references)."""


def engine_problems(entry: ModelEntry, engines: Mapping[str, str]) -> list[str]:
    """What `entry` asks that its engine (one of `engines`: name → factory string) cannot do."""
    engine = entry.engine
    if engine not in engines:
        return [f"unknown engine {engine!r} (known engines: {', '.join(sorted(engines))})"]
    try:
        can = capabilities(engine, engines[engine])
    except ValueError as exc:
        return [f"engine {engine!r}: {exc}"]
    problems = []
    missing = job_kinds(entry) - can.kinds
    if missing:
        problems.append(f"engine {engine!r} cannot do {', '.join(sorted(missing))} jobs")
    if can.grid is not None and entry.fps != can.grid.fps:
        problems.append(
            f"fps {entry.fps} is not the native rate of engine {engine!r} "
            f"(set fps = {can.grid.fps})"
        )
    problems += _length_problems(entry, can) + _size_problems(entry, can)
    return problems + _sound_problems(entry, can)


def _length_problems(entry: ModelEntry, can: Capabilities) -> list[str]:
    if can.max_frames is None:
        return []
    too_long, unreadable = [], []
    for duration in entry.constraints.durations:
        try:
            seconds = duration_seconds(duration)
        except ValueError:
            unreadable.append(duration)
            continue
        if seconds is None:
            continue  # as long as a source clip: only a kind the engine does not do (v2v)
        frames = can.grid.frame_count(seconds) if can.grid else round(seconds * entry.fps)
        if frames > can.max_frames:
            too_long.append(duration)
    problems = [f"durations {unreadable} are not durations"] if unreadable else []
    if too_long:
        problems.append(
            f"engine {entry.engine!r} renders at most {can.max_frames} frames: "
            f"durations {too_long} are longer"
        )
    return problems


def _size_problems(entry: ModelEntry, can: Capabilities) -> list[str]:
    if can.max_lines is None:
        return []
    listed = entry.constraints.resolutions
    lines = {r: LINES.get(r, DEFAULT_LINES) for r in listed} if listed else {"": DEFAULT_LINES}
    too_tall = [r for r, n in lines.items() if n > can.max_lines]
    if not too_tall:
        return []
    named = f"resolutions {too_tall} are" if listed else f"the default of {DEFAULT_LINES} lines is"
    return [f"engine {entry.engine!r} renders at most {can.max_lines} lines: {named} taller"]


def _sound_problems(entry: ModelEntry, can: Capabilities) -> list[str]:
    c = entry.constraints
    problems = []
    if not can.audio:
        asked = [k for k in ("audio", "audio_configurable") if getattr(c, k)]
        if asked:
            problems.append(
                f"engine {entry.engine!r} makes no sound: set constraints "
                f"{' and '.join(asked)} to false (audio_request says how audio: true is answered)"
            )
    takes = [f for f in AUDIO_INPUTS if f in (*entry.requires, *entry.accepts)]
    if takes and not can.audio_input:
        problems.append(f"engine {entry.engine!r} takes no audio input: {', '.join(takes)}")
    return problems
