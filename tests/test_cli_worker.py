"""`videoqueue worker --engine NAME --device DEV`: a worker for some engines, on one device."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import load_job, wait_until
from tests.fleet_rows import register
from tests.jobs.fixture_workers import queue_scripted
from videoqueue.cli import main
from videoqueue.clock import SystemClock
from videoqueue.db.migrate import upgrade
from videoqueue.db.session import Database
from videoqueue.engines.registry import UnknownEngine
from videoqueue.jobs.states import JobState
from videoqueue.jobs.worker import Worker
from videoqueue.settings import Settings
from videoqueue.storage.factory import storage_from_url
from videoqueue.storage.layout import output_key
from videoqueue.workers import Supervisor, build_worker

ENGINES = {
    "instant": "tests.engines.fixture_engines:Instant",
    "device": "tests.engines.fixture_engines:DeviceNamed?device=cpu",
}
ROOT = Path(__file__).resolve().parents[1]
CATALOG = """
[models."wan-2.5-preview-text-to-video"]
engine = "instant"

[models."flux-3-text-to-video"]
engine = "device"
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(CATALOG)
    settings = Settings(data_dir=tmp_path / "data", catalog_path=catalog, engines=ENGINES)
    settings.data_dir.mkdir()
    upgrade(settings.resolved_database_url)
    return settings


@pytest.fixture
def built(settings: Settings, request: pytest.FixtureRequest) -> Iterator[Worker]:
    engines, device = request.param
    worker = build_worker(settings, engines, device)
    yield worker
    worker.close()
    worker.db.dispose()


def output(worker: Worker, job_id: str, tmp_path: Path) -> str:
    copy = tmp_path / f"{job_id}.out"
    worker.storage.fetch_to(output_key(job_id), copy)
    return copy.read_text()


@pytest.mark.parametrize("built", [(["instant"], None)], indirect=True)
def test_a_worker_for_one_engine_sets_up_and_claims_only_its_jobs(
    built: Worker, tmp_path: Path
) -> None:
    assert list(built.engines) == ["instant"]
    _, other = queue_scripted(built.db, "ok", max_attempts=1, engine="device")
    _, mine = queue_scripted(built.db, "ok", max_attempts=1, engine="instant")
    assert built.run_once()
    assert not built.run_once(), "the other engine's job is not this worker's"
    assert load_job(built.db, mine).state == JobState.COMPLETED
    assert load_job(built.db, other).state == JobState.QUEUED


@pytest.mark.parametrize("built", [(["device", "instant"], "cuda:1")], indirect=True)
def test_the_device_reaches_engines_whose_factory_takes_one(built: Worker, tmp_path: Path) -> None:
    _, on_device = queue_scripted(built.db, "ok", max_attempts=1, engine="device")
    _, plain = queue_scripted(built.db, "ok", max_attempts=1, engine="instant")
    assert built.run_once() and built.run_once()
    assert output(built, on_device, tmp_path) == "cuda:1", "it replaces the factory's cpu"
    assert load_job(built.db, plain).state == JobState.COMPLETED, "Instant takes no device"


@pytest.mark.parametrize("built", [((), None)], indirect=True)
def test_without_engines_named_a_worker_runs_every_bound_engine_on_its_own_device(
    built: Worker, tmp_path: Path
) -> None:
    assert {"device", "instant", "preview"} <= set(built.engines)
    _, job_id = queue_scripted(built.db, "ok", max_attempts=1, engine="device")
    assert built.run_once()
    assert output(built, job_id, tmp_path) == "cpu"


def test_an_unknown_engine_is_refused_when_the_worker_is_built(settings: Settings) -> None:
    with pytest.raises(UnknownEngine, match=r"no engine named 'nope'; known: .*instant"):
        build_worker(settings, ["nope"])


@pytest.fixture
def environment(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The settings in the environment, and `worker_main` recording what it is given."""
    monkeypatch.setenv("VIDEOQUEUE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("VIDEOQUEUE_CATALOG_PATH", str(settings.catalog_path))
    monkeypatch.setenv("VIDEOQUEUE_ENGINES", json.dumps(ENGINES))
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(
        "videoqueue.workers.worker_main",
        lambda _settings, **given: calls.append(given),
    )
    return calls


def test_worker_command_refuses_an_unknown_engine_at_start(
    environment: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["worker", "--engine", "instant", "--engine", "nope"]) == 2
    assert "No engine named nope; known: device, instant" in capsys.readouterr().err
    assert environment == [], "no worker started"


def test_worker_command_hands_its_engines_and_device_to_the_worker(
    environment: list[dict[str, Any]],
) -> None:
    assert main(["worker", "--engine", "instant", "--engine", "device", "--device", "cuda:1"]) == 0
    assert environment == [{"engines": ["instant", "device"], "device": "cuda:1"}]
    assert main(["worker"]) == 0
    assert environment[1] == {"engines": [], "device": None}


def test_serve_can_run_the_api_alone_for_workers_started_per_gpu(settings: Settings) -> None:
    alone = Settings(data_dir=settings.data_dir, workers=0)
    supervisor = Supervisor(alone, alone.workers)
    supervisor.start()
    assert supervisor.processes == []
    supervisor.stop()
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        Settings(workers=-1)


def test_workers_command_shows_the_fleet_as_a_table_and_as_json(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = Database(settings.resolved_database_url)
    now = SystemClock().now()
    register(db, "gpu-1:10:a", {"instant": "ready", "device": "setting up"}, heard_at=now)
    register(db, "gpu-2:11:b", {"instant": "ready"}, heard_at=now - timedelta(hours=1))
    db.dispose()
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["workers", "--data-dir", str(settings.data_dir)]) == 0
    table = capsys.readouterr().out
    assert "2 worker(s)" in table
    rows = {line.split("│")[1].strip(): line for line in table.splitlines() if "gpu-" in line}
    assert "running" in rows["gpu-1:10:a"] and "instant: ready" in rows["gpu-1:10:a"]
    assert "lost" in rows["gpu-2:11:b"] and "cuda:0" in rows["gpu-2:11:b"]
    assert "device: setting up" in table
    assert main(["workers", "--json", "--data-dir", str(settings.data_dir)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(w["id"], w["state"]) for w in listed] == [
        ("gpu-2:11:b", "lost"),
        ("gpu-1:10:a", "running"),
    ]


def test_serve_no_worker_runs_the_api_without_starting_a_worker(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[Settings] = []
    supervised: list[int] = []
    monkeypatch.setattr(
        "videoqueue.api.serving.serve_api", lambda given, _processes: served.append(given)
    )
    monkeypatch.setattr(
        "videoqueue.workers.Supervisor.start",
        lambda supervisor: supervised.append(supervisor.count),
    )
    monkeypatch.setattr("videoqueue.workers.Supervisor.stop", lambda _supervisor: None)
    # It would point this test process's metrics at the data dir.
    monkeypatch.setattr("videoqueue.metrics_folder.use_metrics_dir", lambda *_args, **_kwargs: None)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        assert main(["serve", "--no-worker", "--data-dir", str(settings.data_dir)]) == 0
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    assert ([s.workers for s in served], supervised) == ([0], [0])


def test_the_children_of_a_worker_command_import_no_database_layer(
    settings: Settings, tmp_path: Path
) -> None:
    """Every process `python -m videoqueue.cli` spawns imports that module again first: an
    engine's child, two spawns down, loads what the engine needs, not what workers do."""
    modules = {"modules": "tests.engines.fixture_engines:ImportedModules"}
    db = Database(settings.resolved_database_url)
    _, job_id = queue_scripted(db, "ok", 1, "modules")
    env = {
        **os.environ,
        "VIDEOQUEUE_DATA_DIR": str(settings.data_dir),
        "VIDEOQUEUE_CATALOG_PATH": str(settings.catalog_path),
        "VIDEOQUEUE_ENGINES": json.dumps({**ENGINES, **modules}),
    }
    command = [sys.executable, "-m", "videoqueue.cli", "worker", "--engine", "modules"]
    with (tmp_path / "worker.log").open("wb") as log:
        worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)

    def completed() -> bool:
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()
        return load_job(db, job_id).state == JobState.COMPLETED

    try:
        wait_until(completed, timeout=60)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
        db.dispose()
    storage = storage_from_url(settings.resolved_storage_url, settings.s3_config())
    storage.fetch_to(output_key(job_id), tmp_path / "out")
    assert (tmp_path / "out").read_text() == ""
