"""`videoqueue serve` as an operator runs it: a real process on a free port, stopped by a signal,
leaves no worker, engine or API process behind; and the drain of requests in flight it asks of
uvicorn."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import load_job, wait_until
from videoqueue.api.serving import SETTINGS_ENV, serve_api
from videoqueue.auth.keys import create_key
from videoqueue.auth.models import KeyKind
from videoqueue.billing.ledger import create_account, top_up
from videoqueue.billing.models import AccountKind
from videoqueue.clock import SystemClock
from videoqueue.db.migrate import upgrade
from videoqueue.db.session import Database
from videoqueue.jobs.states import JobState
from videoqueue.settings import Settings

REPO = Path(__file__).resolve().parents[1]
MODEL = "wan-2.5-preview-text-to-video"
INSTANT = {"instant": "tests.engines.fixture_engines:Instant"}

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def descendants(pid: int) -> set[int]:
    """Every live process below `pid`, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))):
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def _stat(pid: int) -> list[str] | None:
    """(state, ppid, …) of a process, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    db: Database
    base_url: str
    key: str
    log: Path
    api_processes: int
    workers: int


@pytest.fixture
def serve(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Served]:
    api_processes, workers = request.param
    data = tmp_path / "data"
    data.mkdir()
    url = f"sqlite:///{data / 'videoqueue.db'}"
    upgrade(url)
    db = Database(url)
    clock = SystemClock()
    with db.transaction() as session:
        account = create_account(session, kind=AccountKind.STANDARD, clock=clock)
        top_up(session, account_id=account.id, micros=100_000_000, clock=clock, note="test")
        _, key = create_key(session, account_id=account.id, clock=clock, kind=KeyKind.INFERENCE)
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(f'[models."{MODEL}"]\nengine = "instant"\n')
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "VIDEOQUEUE_DATA_DIR": str(data),
        "VIDEOQUEUE_PORT": str(port),
        "VIDEOQUEUE_API_PROCESSES": str(api_processes),
        "VIDEOQUEUE_WORKERS": str(workers),
        "VIDEOQUEUE_CATALOG_PATH": str(catalog),
        "VIDEOQUEUE_ENGINES": json.dumps(INSTANT),
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "videoqueue.cli", "serve"], env=env, stdout=out, stderr=out
        )
    try:
        base_url = f"http://127.0.0.1:{port}/api/v1"
        yield Served(process, db, base_url, key, log, api_processes, workers)
    finally:
        for pid in descendants(process.pid):
            os.kill(pid, signal.SIGKILL)
        process.kill()
        process.wait()
        db.dispose()


def _queue_when_up(served: Served) -> str:
    def queued() -> str | None:
        assert served.process.poll() is None, served.log.read_text()
        try:
            response = httpx.post(
                f"{served.base_url}/video/queue",
                json={"model": MODEL, "prompt": "a kite", "duration": "5s"},
                headers={"Authorization": f"Bearer {served.key}"},
            )
        except httpx.TransportError:
            return None
        assert response.status_code == 200, response.text
        return str(response.json()["queue_id"])

    return str(wait_until(queued, timeout=90, interval=0.2))


CASES = [((1, 2), signal.SIGTERM), ((2, 2), signal.SIGTERM), ((2, 1), signal.SIGINT)]


@pytest.mark.parametrize(
    ("serve", "signum"),
    CASES,
    ids=[f"{s.name}-{a}-api-{w}-workers" for (a, w), s in CASES],
    indirect=["serve"],
)
def test_a_signal_stops_serve_and_every_process_it_started(
    serve: Served, signum: signal.Signals
) -> None:
    job_id = _queue_when_up(serve)
    wait_until(lambda: load_job(serve.db, job_id).state == JobState.COMPLETED, timeout=90)
    started = descendants(serve.process.pid)
    # The workers, the engine child that ran the job and the API processes beside this one.
    assert len(started) >= serve.workers + 1 + (serve.api_processes - 1), started
    if serve.api_processes == 1 and hasattr(os, "sched_getaffinity"):
        # Only API processes keep to a core (videoqueue.cpus): here all below serve are the
        # workers and their engine children, which may run on every core.
        cores = os.sched_getaffinity(0)
        assert all(os.sched_getaffinity(pid) == cores for pid in started)

    serve.process.send_signal(signum)

    assert serve.process.wait(timeout=60) == 0, serve.log.read_text()
    wait_until(lambda: not any(alive(pid) for pid in started), timeout=30)
    assert "videoqueue: stopped" in serve.log.read_text()


def test_the_api_drains_requests_in_flight_for_its_grace_on_sigterm(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ran: list[dict[str, Any]] = []
    monkeypatch.setattr("uvicorn.run", lambda *_args, **options: ran.append(options))
    monkeypatch.delenv(SETTINGS_ENV, raising=False)  # serve_api sets it; restored after
    serve_api(Settings(data_dir=tmp_path, api_shutdown_grace_seconds=7), 1)
    assert ran[0]["timeout_graceful_shutdown"] == 7
