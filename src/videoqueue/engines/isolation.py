"""Running an engine in a spawned child process that stays warm between jobs.

Native code (FFmpeg on a client's file, a model's weights) can crash or exhaust memory; in a
child it takes only the child down. The worker talks to the child through the small frozen
events below, never dicts. The child builds its engine once and says `Ready` or
`SetupFailed` before it takes a job. A child that dies without saying `Done` surfaces as
`EngineCrashed`; one past its job's time limit, or that ignores a `Cancel`, is killed. Either
way the worker sets up a fresh child before its next job.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import multiprocessing
import os
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from urllib.parse import parse_qsl

from videoqueue.engines.base import (
    Engine,
    EngineError,
    JobCancelled,
    JobInput,
    ProgressCallback,
    ProviderContentPolicy,
    TimeLimitExceeded,
    UpstreamJob,
    UpstreamRecorder,
    UpstreamReleaser,
    VideoInfo,
)
from videoqueue.engines.lifecycle import RunLimits
from videoqueue.logs import LogFormat, configure_logging, configured_log_format, log_fields
from videoqueue.orphans import stop_when_orphaned

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ready:
    """Child → worker: the engine is built; the child takes jobs."""


@dataclass(frozen=True)
class SetupFailed:
    """Child → worker: the engine could not be built (the child then exits)."""

    error: str


@dataclass(frozen=True)
class Run:
    """Worker → child: generate `job` into `output_path`."""

    job: JobInput
    output_path: Path


@dataclass(frozen=True)
class Cancel:
    """Worker → child: stop the running job at the engine's next progress call."""


@dataclass(frozen=True)
class Progress:
    """Child → worker: the fraction of the job done."""

    fraction: float


@dataclass(frozen=True)
class Upstream:
    """Child → worker: the engine started `job` on another server; the child waits for
    `UpstreamRecorded` before it goes on."""

    job: UpstreamJob


@dataclass(frozen=True)
class UpstreamRecorded:
    """Worker → child: the upstream job is stored with ours, or (`kept` False) the job is no
    longer this worker's."""

    kept: bool


@dataclass(frozen=True)
class Done:
    """Child → worker: the job ended, with the MP4's description, the engine's error, or
    `cancelled` when a `Cancel` stopped it (its output is not to be kept)."""

    info: VideoInfo | None = None
    error: str | None = None
    refundable: bool = True
    content_policy: bool = False
    recommended_model: str | None = None
    cancelled: bool = False

    def raise_error(self) -> None:
        if self.cancelled:
            raise JobCancelled()
        if self.error is None:
            return
        if self.content_policy:
            raise ProviderContentPolicy(
                self.error, recommended_model=self.recommended_model, refundable=self.refundable
            )
        raise EngineError(self.error, refundable=self.refundable)


@dataclass(frozen=True)
class Release:
    """Worker → child, between jobs: let go of `upstream`, the job another server ran for
    our job of `model` (which has ended)."""

    upstream: UpstreamJob
    model: str


@dataclass(frozen=True)
class Released:
    """Child → worker: the upstream let go of the job; or `error` says why it did not; or
    (`releasable` False) the engine has no upstream jobs to release."""

    error: str | None = None
    releasable: bool = True


class EngineCrashed(EngineError):
    """The engine's process died before it finished the job."""


def factory_parts(factory: str) -> tuple[str, str, dict[str, str]]:
    """`module:load?family=wan21&path=/weights/…` → its module, attribute and query options.
    Raises `ValueError` for a query that is not `key=value` pairs."""
    module_name, _, call = factory.partition(":")
    attribute, _, query = call.partition("?")
    # Percent-escapes let a value (a path) hold `&` or `=`.
    options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=True)) if query else {}
    return module_name, attribute, options


def load_engine(factory: str, device: str | None = None) -> Engine:
    """Build the engine named `package.module:Factory` (a class or a function), called with the
    keyword arguments of an optional query: `module:load?family=wan21&path=/weights/…`.
    A `device` (the worker's `--device`) replaces the query's, for a factory with a `device`
    parameter; other factories do not get it."""
    module_name, attribute, options = factory_parts(factory)
    make = getattr(importlib.import_module(module_name), attribute)
    if device is not None and "device" in inspect.signature(make).parameters:
        options["device"] = device
    built = make(**options)
    assert hasattr(built, "generate"), f"{factory} is not an engine"
    return built  # type: ignore[no-any-return]


def _finished(error: Exception) -> Done:
    if isinstance(error, EngineError):
        return Done(
            error=error.message,
            refundable=error.refundable,
            content_policy=isinstance(error, ProviderContentPolicy),
            recommended_model=getattr(error, "recommended_model", None),
        )
    return Done(error=f"{type(error).__name__}: {error}")


def child_main(
    connection: Connection,
    factory: str,
    parent_pid: int,
    device: str | None = None,
    log_format: LogFormat | None = None,
) -> None:
    """The child's life: build the engine once, say whether it could, then run jobs until
    the worker hangs up. It logs in `log_format`, as its worker does (a spawned process
    starts with no handler, which drops every record under WARNING); a job's records carry
    its id.

    A worker killed outright cannot stop its child: the child notices it is orphaned (even
    in the middle of a job that sends nothing) and exits quietly.
    """
    if log_format is not None:
        configure_logging(log_format, "%(asctime)s engine %(message)s")
    # Ctrl-C reaches the whole process group: the worker decides when its engine stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(
        target=_exit_when_orphaned, args=(parent_pid,), daemon=True, name="orphan-watch"
    ).start()
    try:
        try:
            engine = load_engine(factory, device)
        except Exception as error:
            connection.send(SetupFailed(f"{type(error).__name__}: {error}"))
            return
        connection.send(Ready())
        _serve(connection, engine)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        return  # the worker is gone


def _exit_when_orphaned(parent_pid: int) -> None:
    stop_when_orphaned(parent_pid, threading.Event())
    os._exit(0)  # the job's main thread may be deep in native code: nothing to unwind


class _Reporter:
    """A job's progress callback in the child: sends each fraction, and raises `JobCancelled`
    once the worker has sent `Cancel` (the only message that arrives during a job, besides
    the answer to `record_upstream`)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.cancelled = False

    def __call__(self, fraction: float) -> None:
        if not self.cancelled and self.connection.poll():
            self.cancelled = isinstance(self.connection.recv(), Cancel)
        if self.cancelled:
            raise JobCancelled()
        self.connection.send(Progress(fraction))

    def record_upstream(self, upstream: UpstreamJob) -> None:
        self.connection.send(Upstream(upstream))
        while not isinstance(answer := self.connection.recv(), UpstreamRecorded):
            self.cancelled = self.cancelled or isinstance(answer, Cancel)
        if self.cancelled or not answer.kept:
            self.cancelled = True
            raise JobCancelled()


def _release(engine: Engine, message: Release) -> Released:
    if not isinstance(engine, UpstreamReleaser):
        return Released(releasable=False)
    try:
        engine.release(message.upstream, message.model)
    except Exception as error:  # reported to the worker, which tries again later
        return Released(error=_finished(error).error)
    return Released()


def _serve(connection: Connection, engine: Engine) -> None:
    while True:
        message = connection.recv()
        if isinstance(message, Cancel):
            continue  # it came after the job it meant had ended
        if isinstance(message, Release):
            connection.send(_release(engine, message))
            continue
        assert isinstance(message, Run)
        reporter = _Reporter(connection)
        try:
            with log_fields(job_id=message.job.job_id):
                info = engine.generate(message.job, message.output_path, reporter)
        except Exception as error:  # reported to the worker, which fails the job
            done = Done(cancelled=True) if reporter.cancelled else _finished(error)
        else:
            done = Done(cancelled=True) if reporter.cancelled else Done(info=info)
        connection.send(done)


class IsolatedEngine:
    """An engine whose work happens in a warm child process built from `factory`.

    `setup` starts the child and waits for it to say whether its engine could be built;
    `run` needs a ready engine. An engine closed (or whose child died) needs `setup` again.
    A `device` reaches the factory as `load_engine` says.
    """

    def __init__(self, name: str, factory: str, device: str | None = None) -> None:
        self.name = name
        self.factory = factory
        self.device = device
        self.setup_error: str | None = None
        self._context = multiprocessing.get_context("spawn")
        self._process: BaseProcess | None = None
        self._connection: Connection | None = None

    @property
    def ready(self) -> bool:
        return self._connection is not None

    def setup(self, timeout: float) -> None:
        """Start a fresh child and wait up to `timeout` for its engine to be built; then
        `ready`, or `setup_error` says why not."""
        self.close()
        ours, theirs = self._context.Pipe(duplex=True)
        self._process = self._context.Process(
            target=child_main,
            args=(theirs, self.factory, os.getpid(), self.device, configured_log_format()),
            daemon=True,
            name=f"videoqueue-engine-{self.name}",
        )
        self._process.start()
        theirs.close()
        try:
            answer = ours.recv() if ours.poll(timeout) else None
        except (EOFError, ConnectionResetError):
            answer = SetupFailed(f"its process died (exit code {self._exit_code()})")
        if isinstance(answer, Ready):
            self._connection, self.setup_error = ours, None
            return
        ours.close()
        self.close()
        self.setup_error = (
            answer.error if isinstance(answer, SetupFailed) else f"not ready after {timeout:g} s"
        )

    def run(
        self,
        job: JobInput,
        output_path: Path,
        progress: ProgressCallback,
        limits: RunLimits | None = None,
    ) -> VideoInfo:
        assert self._connection is not None, f"the {self.name} engine is not set up"
        limits = limits or RunLimits()
        connection = self._connection
        started = time.monotonic()
        cancel_sent: float | None = None
        try:
            connection.send(Run(job, output_path))
            while True:
                if connection.poll(0.05):
                    event = connection.recv()
                    if isinstance(event, Progress):
                        progress(event.fraction)
                        continue
                    if isinstance(event, Upstream):
                        connection.send(UpstreamRecorded(self._record(progress, event.job)))
                        continue
                    assert isinstance(event, Done)
                    event.raise_error()
                    assert event.info is not None
                    return event.info
                now = time.monotonic()
                if limits.cancelled and cancel_sent is None:
                    connection.send(Cancel())
                    cancel_sent = now
                if cancel_sent is not None and now - cancel_sent > limits.cancel_grace_seconds:
                    log.warning("the %s engine ignored a cancel; killing it", self.name)
                    self.close()
                    raise JobCancelled()
                limit = limits.max_run_seconds
                if limit is not None and now - started > limit:
                    self.close()
                    raise TimeLimitExceeded(limit)
        except (EOFError, BrokenPipeError, ConnectionResetError):
            raise self._crashed() from None

    def release(self, upstream: UpstreamJob, model: str) -> bool:
        """Have the engine let go of `upstream` between jobs (see `WarmEngine`); raises
        `EngineError` when it could not, `EngineCrashed` when its process died meanwhile."""
        assert self._connection is not None, f"the {self.name} engine is not set up"
        try:
            self._connection.send(Release(upstream, model))
            answer = self._connection.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError):
            raise self._crashed() from None
        assert isinstance(answer, Released)
        if answer.error is not None:
            raise EngineError(answer.error)
        return answer.releasable

    def _crashed(self) -> EngineCrashed:
        """The error for a child that died; the engine needs `setup` again."""
        code = self._exit_code()
        self.close()
        return EngineCrashed(f"the {self.name} engine's process died (exit code {code})")

    def _record(self, progress: ProgressCallback, upstream: UpstreamJob) -> bool:
        """Whether the job is still ours once `upstream` is stored (a caller that stores
        nothing, as a test's bare callback, lets the engine go on). A store that fails stops
        the child: the attempt counts as crashed, and the next one asks upstream again, which
        the engine makes safe."""
        if not isinstance(progress, UpstreamRecorder):
            return True
        try:
            progress.record_upstream(upstream)
        except JobCancelled:
            return False
        except Exception:
            log.exception("the %s engine's upstream job could not be stored", self.name)
            self.close()
            raise EngineCrashed(
                f"the {self.name} engine's upstream job could not be stored"
            ) from None
        return True

    def _exit_code(self) -> int | None:
        if self._process is None:
            return None
        self._process.join(5)
        return self._process.exitcode

    def close(self) -> None:
        """Stop the child (the engine needs `setup` again)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        if self._process is not None:
            if self._process.is_alive():
                self._process.terminate()
            self._process.join(5)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(5)
            self._process = None
