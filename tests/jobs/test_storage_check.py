"""`videoqueue storage check [--delete]` lists the stored objects no job owns (of job ids
with no row, of deleted or expired jobs) with their sizes, and deletes them when asked;
objects of pending jobs and of ended jobs whose media is kept are left alone."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import Env, build_env, make_tiny_job
from videoqueue.billing.ledger import create_account
from videoqueue.billing.models import AccountKind
from videoqueue.cli import main
from videoqueue.clock import ManualClock
from videoqueue.jobs.states import PENDING, JobState
from videoqueue.settings import Settings
from videoqueue.storage.base import Storage
from videoqueue.storage.factory import storage_from_url
from videoqueue.storage.layout import input_key, output_key

PNG_SHA = "0" * 64


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    yield from build_env(Settings(data_dir=tmp_path / "data"))


def _storage(env: Env) -> Storage:
    return storage_from_url(env.settings.resolved_storage_url)


def _job(env: Env, state: JobState) -> str:
    """A job (made without the API) in `state`, with one input and, once ended, an output."""
    clock = ManualClock()
    storage = _storage(env)
    with env.db.transaction() as session:
        account = create_account(session, kind=AccountKind.STANDARD, clock=clock)
        job = make_tiny_job(
            session,
            account_id=account.id,
            clock=clock,
        )
        storage.put_bytes(input_key(job.id, PNG_SHA), b"png")
        job.state = state
        if state not in PENDING:
            storage.put_bytes(output_key(job.id), b"an mp4")
        return job.id


def _put_stray(env: Env, key: str, data: bytes, age: timedelta = timedelta(hours=2)) -> None:
    """`data` stored under `key` (of a job id with no job) as if written `age` ago."""
    storage = _storage(env)
    storage.put_bytes(key, data)
    path = storage.local_path(key)
    assert path is not None
    then = time.time() - age.total_seconds()
    os.utime(path, (then, then))


def _check(env: Env, *flags: str) -> int:
    return main(["storage", "check", "--data-dir", str(env.settings.data_dir), *flags])


def test_a_clean_storage_exits_0(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    for state in (JobState.QUEUED, JobState.RUNNING, JobState.COMPLETED, JobState.FAILED):
        _job(env, state)
    assert _check(env) == 0
    assert "clean" in capsys.readouterr().err


def test_unowned_objects_are_listed_with_sizes_and_a_total_and_exit_1(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = [_job(env, state) for state in (JobState.QUEUED, JobState.CANCELLED)]
    deleted = _job(env, JobState.DELETED)
    expired = _job(env, JobState.EXPIRED)
    stray = str(uuid.uuid4())
    _put_stray(env, output_key(stray), b"0123456789")
    _storage(env).put_bytes("elsewhere/file", b"not ours")

    assert _check(env) == 1
    out = capsys.readouterr()
    listed = [line.split("\t") for line in out.out.splitlines()]
    assert listed == [
        ["bytes", "key", "why"],
        *sorted(
            [
                ["3", input_key(deleted, PNG_SHA), "job deleted"],
                ["6", output_key(deleted), "job deleted"],
                ["3", input_key(expired, PNG_SHA), "job expired"],
                ["6", output_key(expired), "job expired"],
                ["10", output_key(stray), "no such job"],
            ],
            key=lambda row: row[1],
        ),
    ]
    assert "5 object(s) of 3 job(s)" in out.err and "28 bytes" in out.err
    assert all(_storage(env).exists(input_key(job_id, PNG_SHA)) for job_id in kept)


def test_delete_removes_only_the_unowned_objects_then_the_check_is_clean(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    running = _job(env, JobState.RUNNING)
    completed = _job(env, JobState.COMPLETED)
    deleted = _job(env, JobState.DELETED)
    stray = str(uuid.uuid4())
    storage = _storage(env)
    _put_stray(env, input_key(stray, PNG_SHA), b"png")
    storage.put_bytes("elsewhere/file", b"not ours")

    assert _check(env, "--delete") == 0
    assert "deleted the objects of 2 job(s)" in capsys.readouterr().err
    assert sorted(o.key for o in storage.objects("")) == sorted(
        [
            input_key(running, PNG_SHA),
            input_key(completed, PNG_SHA),
            output_key(completed),
            "elsewhere/file",
        ]
    )
    assert not list(o.key for o in storage.objects(f"jobs/{deleted}/"))
    assert _check(env) == 0


def test_a_job_id_with_no_job_is_left_alone_while_its_objects_are_young(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    # As the inputs of a queue request are, stored a moment before its job's row.
    arriving, old = str(uuid.uuid4()), str(uuid.uuid4())
    _put_stray(env, input_key(arriving, PNG_SHA), b"png", age=timedelta(minutes=59))
    _put_stray(env, input_key(arriving, "1" * 64), b"png", age=timedelta(hours=3))
    _put_stray(env, input_key(old, PNG_SHA), b"png", age=timedelta(minutes=61))

    assert _check(env, "--delete") == 0
    assert "deleted the objects of 1 job(s)" in capsys.readouterr().err
    assert _storage(env).exists(input_key(arriving, PNG_SHA))
    assert _storage(env).exists(input_key(arriving, "1" * 64))
    assert not _storage(env).exists(input_key(old, PNG_SHA))

    assert _check(env, "--grace-minutes", "0") == 1
    assert input_key(arriving, PNG_SHA) in capsys.readouterr().out


@pytest.mark.parametrize("minutes", ["-1", "nan", "soon", "1e99"])
def test_a_grace_that_is_not_a_number_of_minutes_is_refused(
    env: Env, minutes: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        _check(env, "--grace-minutes", minutes)
    assert exited.value.code == 2
    assert "not a number of minutes" in capsys.readouterr().err
