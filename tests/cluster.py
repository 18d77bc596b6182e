"""A cluster on one machine: `videoqueue serve` API processes and `videoqueue worker` processes,
real subprocesses over one PostgreSQL database and one shared storage, each of which a test
can kill outright and start again. Every process logs to its own file, kept across restarts."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from tests.s3_server import S3Server
from tests.test_cli_serve import REPO, free_port

LOG_TAIL_LINES = 120


@dataclass(frozen=True)
class SharedStorage:
    """The storage every process of a cluster uses: the settings that reach it (as
    environment variables), and every key stored in it."""

    environment: dict[str, str]
    list_keys: Callable[[], set[str]]


def bucket_storage(server: S3Server) -> SharedStorage:
    """A fresh prefix of the test S3 server's bucket, as several hosts would share it."""
    settings = server.settings()
    prefix = urlparse(settings["storage_url"]).path.strip("/") + "/"

    def list_keys() -> set[str]:
        pages = server.client().get_paginator("list_objects_v2")
        return {
            entry["Key"].removeprefix(prefix)
            for page in pages.paginate(Bucket=server.bucket, Prefix=prefix)
            for entry in page.get("Contents", [])
        }

    return SharedStorage(
        {f"VIDEOQUEUE_{k.upper()}": str(v) for k, v in settings.items()}, list_keys
    )


@dataclass
class Member:
    """One process of the cluster, started by `command` with `environment`."""

    name: str
    command: list[str]
    environment: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    groups: list[int] = field(default_factory=list)
    """The process group of each start, so that what a killed process left is ended too."""
    starts: int = 0

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} is not started"
        return self.process.pid

    def start(self) -> None:
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"===== {self.name}: start {self.starts} =====\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                self.command,
                env=self.environment,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.groups.append(self.process.pid)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the process itself, as a crash would; its children notice and stop."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def end_everything(self) -> None:
        """SIGKILL every process any start of this member left (at the end of a test)."""
        for group in self.groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        if self.process is not None:
            self.process.wait()

    def log_tail(self) -> str:
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        shown = "\n".join(lines[-LOG_TAIL_LINES:])
        return f"----- {self.name} ({self.log}, last {LOG_TAIL_LINES} lines) -----\n{shown}"


@dataclass
class Cluster:
    """API processes and worker processes over one database and one storage."""

    apis: list[Member]
    workers: list[Member]
    ports: list[int]

    @property
    def members(self) -> list[Member]:
        return [*self.apis, *self.workers]

    @property
    def base_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}/api/v1" for port in self.ports]

    def start(self) -> None:
        for member in self.members:
            member.start()

    def running(self) -> bool:
        """True; fails the test if a process exited (one killed is started again at once)."""
        gone = [member.name for member in self.members if not member.alive()]
        assert gone == [], f"{gone} exited by themselves"
        return True

    def end(self) -> None:
        for member in self.members:
            member.end_everything()

    def logs(self) -> str:
        return "\n".join(member.log_tail() for member in self.members)


def build_cluster(
    folder: Path, settings: Mapping[str, str], *, apis: int, workers: int, engine: str
) -> Cluster:
    """`apis` times `videoqueue serve` running no worker of its own, and `workers` times
    `videoqueue worker --engine ENGINE`, each with its own data dir and temp dir (as on
    separate hosts) and the `VIDEOQUEUE_*` `settings` they share."""
    base = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    base.update({"PYTHONPATH": str(REPO), "VIDEOQUEUE_LOG_FORMAT": "text", **settings})
    cli = [sys.executable, "-m", "videoqueue.cli"]

    def member(name: str, command: list[str], extra: dict[str, str]) -> Member:
        home = folder / name
        (home / "tmp").mkdir(parents=True)
        environment = {
            **base,
            "VIDEOQUEUE_DATA_DIR": str(home / "data"),
            "TMPDIR": str(home / "tmp"),
            **extra,
        }
        return Member(name, command, environment, folder / f"{name}.log")

    ports = [free_port() for _ in range(apis)]
    api_members = [
        member(
            f"api-{i}",
            [*cli, "serve", "--no-worker"],
            {"VIDEOQUEUE_PORT": str(port), "VIDEOQUEUE_API_PROCESSES": "1"},
        )
        for i, port in enumerate(ports)
    ]
    worker_members = [
        member(f"worker-{i}", [*cli, "worker", "--engine", engine], {}) for i in range(workers)
    ]
    return Cluster(api_members, worker_members, ports)
