"""Running an engine in a spawned child process that stays warm between jobs.

Native code (FFmpeg on a client's file, a model's weights) can crash or exhaust memory; in a
child it takes only the child down. The worker talks to the child through the small frozen
events below, never dicts. A child that dies without saying `Done` surfaces as
`EngineCrashed`, and a fresh child is started for the next job.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import signal
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

from videoqueue.engines.base import (
    Engine,
    EngineError,
    JobInput,
    ProgressCallback,
    ProviderContentPolicy,
    VideoInfo,
)
from videoqueue.orphans import stop_when_orphaned

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Run:
    """Worker → child: generate `job` into `output_path`."""

    job: JobInput
    output_path: Path


@dataclass(frozen=True)
class Progress:
    """Child → worker: the fraction of the job done."""

    fraction: float


@dataclass(frozen=True)
class Done:
    """Child → worker: the job ended, with the MP4's description or the engine's error."""

    info: VideoInfo | None = None
    error: str | None = None
    refundable: bool = True
    content_policy: bool = False
    recommended_model: str | None = None

    def raise_error(self) -> None:
        if self.error is None:
            return
        if self.content_policy:
            raise ProviderContentPolicy(
                self.error, recommended_model=self.recommended_model, refundable=self.refundable
            )
        raise EngineError(self.error, refundable=self.refundable)


class EngineCrashed(EngineError):
    """The engine's process died before it finished the job."""


def load_engine(factory: str) -> Engine:
    """Build the engine named `package.module:Factory` (a class or a function)."""
    module_name, _, attribute = factory.partition(":")
    built = getattr(importlib.import_module(module_name), attribute)()
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


def child_main(connection: Connection, factory: str, parent_pid: int) -> None:
    """The child's loop: build the engine once, then run jobs until the worker hangs up.

    A worker killed outright cannot stop its child: the child notices it is orphaned (even
    in the middle of a job that sends nothing) and exits quietly.
    """
    # Ctrl-C reaches the whole process group: the worker decides when its engine stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(
        target=_exit_when_orphaned, args=(parent_pid,), daemon=True, name="orphan-watch"
    ).start()
    try:
        _serve(connection, factory)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        return  # the worker is gone


def _exit_when_orphaned(parent_pid: int) -> None:
    stop_when_orphaned(parent_pid, threading.Event())
    os._exit(0)  # the job's main thread may be deep in native code: nothing to unwind


def _serve(connection: Connection, factory: str) -> None:
    try:
        engine: Engine | None = load_engine(factory)
        broken = ""
    except Exception as error:  # every job is then answered with why (and refunded)
        engine, broken = None, f"the engine could not start: {type(error).__name__}: {error}"
    while True:
        message = connection.recv()
        assert isinstance(message, Run)

        def progress(fraction: float) -> None:
            connection.send(Progress(fraction))

        if engine is None:
            connection.send(Done(error=broken))
            continue
        try:
            info = engine.generate(message.job, message.output_path, progress)
        except Exception as error:  # reported to the worker, which fails the job
            connection.send(_finished(error))
        else:
            connection.send(Done(info=info))


class IsolatedEngine:
    """An `Engine` whose work happens in a warm child process built from `factory`."""

    def __init__(self, name: str, factory: str) -> None:
        self.name = name
        self.factory = factory
        self._context = multiprocessing.get_context("spawn")
        self._process: BaseProcess | None = None
        self._connection: Connection | None = None

    def _child(self) -> Connection:
        if self._process is None or not self._process.is_alive() or self._connection is None:
            self.close()
            ours, theirs = self._context.Pipe(duplex=True)
            self._process = self._context.Process(
                target=child_main,
                args=(theirs, self.factory, os.getpid()),
                daemon=True,
                name=f"videoqueue-engine-{self.name}",
            )
            self._process.start()
            theirs.close()
            self._connection = ours
        return self._connection

    def generate(self, job: JobInput, output_path: Path, progress: ProgressCallback) -> VideoInfo:
        connection = self._child()
        try:
            connection.send(Run(job, output_path))
            while True:
                event = connection.recv()
                if isinstance(event, Progress):
                    progress(event.fraction)
                    continue
                assert isinstance(event, Done)
                event.raise_error()
                assert event.info is not None
                return event.info
        except (EOFError, BrokenPipeError, ConnectionResetError):
            code = self._exit_code()
            self.close()
            raise EngineCrashed(
                f"the {self.name} engine's process died (exit code {code})"
            ) from None

    def _exit_code(self) -> int | None:
        if self._process is None:
            return None
        self._process.join(5)
        return self._process.exitcode

    def close(self) -> None:
        """Stop the child (a later job starts a new one)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        if self._process is not None:
            if self._process.is_alive():
                self._process.terminate()
            self._process.join(5)
            self._process = None
