"""An engine's lifecycle as a worker drives it: set up once, then run jobs within limits.

`IsolatedEngine` (a warm child process) is what workers use; `InProcessEngine` runs an
engine in the worker's own process, for tests whose engine records what it was given.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from videoqueue.engines.base import (
    Engine,
    JobCancelled,
    JobInput,
    ProgressCallback,
    TimeLimitExceeded,
    UpstreamJob,
    UpstreamReleaser,
    VideoInfo,
    record_upstream,
)


@dataclass(frozen=True)
class RunLimits:
    """What bounds one job's run: its model's time limit, and a cancel the worker may set."""

    max_run_seconds: float | None = None
    cancel: threading.Event | None = None
    cancel_grace_seconds: float = 10.0
    """How long an engine told to stop may carry on before its process is killed."""

    @property
    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()


@runtime_checkable
class WarmEngine(Protocol):
    """An engine set up once (ready, or failed with `setup_error`), then run job after job.

    `run` raises `JobCancelled` when `limits.cancel` stopped it, `TimeLimitExceeded` past the
    time limit, and `EngineError` for a failed generation. `release` lets go of an upstream
    job as `UpstreamReleaser` says: True once it did, False for an engine that releases
    nothing.
    """

    name: str

    @property
    def ready(self) -> bool: ...

    @property
    def setup_error(self) -> str | None: ...

    def setup(self, timeout: float) -> None: ...

    def run(
        self, job: JobInput, output_path: Path, progress: ProgressCallback, limits: RunLimits
    ) -> VideoInfo: ...

    def release(self, upstream: UpstreamJob, model: str) -> bool: ...

    def close(self) -> None: ...


class InProcessEngine:
    """An engine run in the worker's own process: always ready, stopped at its next progress
    call when cancelled or past its time limit (a thread cannot be killed)."""

    ready = True
    setup_error: str | None = None

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.name = engine.name

    def setup(self, timeout: float) -> None:
        pass

    def run(
        self, job: JobInput, output_path: Path, progress: ProgressCallback, limits: RunLimits
    ) -> VideoInfo:
        return self.engine.generate(job, output_path, _Checked(progress, limits))

    def release(self, upstream: UpstreamJob, model: str) -> bool:
        if not isinstance(self.engine, UpstreamReleaser):
            return False
        self.engine.release(upstream, model)
        return True

    def close(self) -> None:
        pass


class _Checked:
    """The progress callback an in-process engine gets: it stops the engine when cancelled or
    past its time limit, and passes an upstream job on to the worker's callback."""

    def __init__(self, progress: ProgressCallback, limits: RunLimits) -> None:
        self.progress = progress
        self.limits = limits
        self.started = time.monotonic()

    def __call__(self, fraction: float) -> None:
        if self.limits.cancelled:
            raise JobCancelled()
        limit = self.limits.max_run_seconds
        if limit is not None and time.monotonic() - self.started > limit:
            raise TimeLimitExceeded(limit)
        self.progress(fraction)

    def record_upstream(self, upstream: UpstreamJob) -> None:
        record_upstream(self.progress, upstream)


def as_warm(engine: Engine | WarmEngine) -> WarmEngine:
    """`engine` as a worker drives it (an in-process engine is wrapped)."""
    return engine if isinstance(engine, WarmEngine) else InProcessEngine(engine)
