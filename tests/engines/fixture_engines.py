"""Tiny engines that misbehave on purpose, for the isolation tests (built in child processes)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
from pathlib import Path

from videoqueue.engines.base import (
    EngineError,
    JobCancelled,
    JobInput,
    ProgressCallback,
    ProviderContentPolicy,
    VideoInfo,
)

INFO = VideoInfo(width=2, height=2, fps=24.0, duration_s=1.0, frames=24, has_audio=False)


class Scripted:
    """Does what the job's prompt says: `crash`, `refuse`, `policy`, `fail`; for 30 s after
    writing its pid, `hang` (silently), `tick` (reporting progress, so a cancel stops it) or
    `stubborn` (reporting progress, ignoring a cancel); `slow` (2 s, then as `ok`); `log`
    (logs a line at INFO, then as `ok`); or writes its pid."""

    name = "scripted"

    def generate(self, job: JobInput, output_path: Path, progress: ProgressCallback) -> VideoInfo:
        if job.prompt == "crash":
            os.kill(os.getpid(), signal.SIGKILL)
        if job.prompt == "refuse":
            raise EngineError("the input image is unreadable", refundable=False)
        if job.prompt == "policy":
            raise ProviderContentPolicy(
                "blocked upstream", recommended_model="wan-2-7-text-to-video"
            )
        if job.prompt == "fail":
            raise RuntimeError("a bug")
        if job.prompt in ("hang", "tick", "stubborn"):
            output_path.write_text(str(os.getpid()))
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                time.sleep(0.05)
                if job.prompt == "tick":
                    progress(0.5)
                if job.prompt == "stubborn":
                    with contextlib.suppress(JobCancelled):
                        progress(0.5)
            raise EngineError("still running after 30 s")
        if job.prompt == "log":
            logging.getLogger(__name__).info("the scripted engine is drawing")
        if job.prompt == "slow":
            output_path.write_text(str(os.getpid()))
            time.sleep(2)
        for fraction in (0.25, 0.5, 1.0):
            progress(fraction)
        output_path.write_text(str(os.getpid()))
        return INFO


class Unloadable:
    """An engine whose weights (say) cannot load: its setup fails."""

    name = "unloadable"

    def __init__(self) -> None:
        raise OSError("libvulkan.so.1: cannot open shared object file")


class StallsOnRetry:
    """An engine whose first setup fails at once (it leaves `marker`), and whose later ones
    hang until the file `gate` exists, then fail too: a retry that takes its time."""

    name = "stalls-on-retry"

    def __init__(self, *, marker: str, gate: str) -> None:
        if not Path(marker).exists():
            Path(marker).touch()
            raise OSError("the weights are not there yet")
        deadline = time.monotonic() + 60
        while not Path(gate).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        raise OSError("the weights are still not there")


class SlowToLoad:
    """An engine whose setup takes a minute."""

    name = "slow"

    def __init__(self) -> None:
        time.sleep(60)


class Instant:
    """Costs nothing: writes a few bytes and reports a 1 s clip (queue benchmark, serve tests)."""

    name = "instant"

    def generate(self, job: JobInput, output_path: Path, progress: ProgressCallback) -> VideoInfo:
        output_path.write_bytes(b"instant")
        return INFO


class ImportedModules:
    """Writes which of `WORKER_LAYERS` its process has imported, comma-separated, as its
    output."""

    name = "modules"

    def generate(self, job: JobInput, output_path: Path, progress: ProgressCallback) -> VideoInfo:
        output_path.write_text(",".join(m for m in WORKER_LAYERS if m in sys.modules))
        return INFO


WORKER_LAYERS = ("sqlalchemy", "alembic", "pydantic_settings")
"""What a worker loads and its engines' children need not."""


class DeviceNamed:
    """Writes the device it was built for as its output (a worker's `--device`)."""

    name = "device"

    def __init__(self, *, device: str = "cpu") -> None:
        self.device = device

    def generate(self, job: JobInput, output_path: Path, progress: ProgressCallback) -> VideoInfo:
        output_path.write_text(self.device)
        return INFO


class Gated:
    """For a prompt `gate:<path>`, reports half done until the file at `path` exists, then
    finishes; `fail` raises a refundable error; any other prompt finishes at once."""

    name = "gated"

    def generate(self, job: JobInput, output_path: Path, progress: ProgressCallback) -> VideoInfo:
        if job.prompt == "fail":
            raise EngineError("told to fail")
        if job.prompt.startswith("gate:"):
            gate = Path(job.prompt.removeprefix("gate:"))
            while not gate.exists():
                progress(0.5)
                time.sleep(0.05)
        progress(1.0)
        output_path.write_bytes(b"gated")
        return INFO


class HeldUpstream:
    """Holds each job (reporting progress) until the file `gate` exists, then renders it with
    the preview engine, or refuses it as a provider's content policy when its prompt is
    `policy`: an upstream whose jobs end when the test says."""

    name = "held-upstream"

    def __init__(self, *, gate: str) -> None:
        self.gate = Path(gate)

    def generate(self, job: JobInput, output_path: Path, progress: ProgressCallback) -> VideoInfo:
        from videoqueue.engines.preview import PreviewEngine

        deadline = time.monotonic() + 120
        while not self.gate.exists():
            if time.monotonic() > deadline:
                raise EngineError(f"{self.gate} did not appear within 120 s")
            progress(0.1)
            time.sleep(0.05)
        if job.prompt == "policy":
            raise ProviderContentPolicy(recommended_model="wan-2-7-text-to-video")
        return PreviewEngine().generate(job, output_path, progress)
