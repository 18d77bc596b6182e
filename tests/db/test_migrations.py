"""Upgrading an empty database gives exactly the schema the models declare."""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from tests.conftest import load_job, retrieve_error
from tests.postgres import make_postgres_database, postgres_available
from videoqueue.db.migrate import alembic_config, upgrade
from videoqueue.db.session import Database
from videoqueue.db.tables import metadata
from videoqueue.engines.base import Element, Media


def assert_schema_matches_the_models(url: str) -> None:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection)
            differences = compare_metadata(context, metadata)
            tables = set(inspect(connection).get_table_names())
    finally:
        engine.dispose()
    assert differences == []
    assert set(metadata.tables) <= tables


def test_upgrade_of_an_empty_database_matches_the_models(database_url: str) -> None:
    assert_schema_matches_the_models(database_url)


def test_upgrading_twice_is_harmless(database_url: str) -> None:
    upgrade(database_url)
    upgrade(database_url)


def test_processes_starting_together_on_an_empty_database_all_migrate_it(
    unmigrated_url: str,
) -> None:
    # As the API processes and workers of a cluster do when they first start at once.
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        pool.map(upgrade, [unmigrated_url] * 3)
    assert_schema_matches_the_models(unmigrated_url)


OLD_FAILURES = {
    "policy": (
        422,
        {
            "error": {
                "message": "blocked upstream Credits have been refunded. "
                "Try using wan-2-7-text-to-video instead.",
                "type": "provider_content_policy",
                "credits_refunded": True,
                "recommended_model": "wan-2-7-text-to-video",
            }
        },
    ),
    "policy-kept": (
        422,
        {
            "error": {
                "message": "The selected model provider rejected this request.",
                "type": "provider_content_policy",
                "credits_refunded": False,
            }
        },
    ),
    "lost": (
        500,
        {
            "error": "Inference processing failed",
            "details": "the worker running this job was lost",
            "credits_refunded": True,
        },
    ),
}
OLD_PARAMS = {
    "model": "seedance-2-0-reference-to-video-basic",
    "prompt": "Refer to <Video 1>",
    "negative_prompt": "",
    "duration": "5s",
    "audio": True,
    "upscale_factor": None,
    "media": {},
    "width": 854,
    "height": 480,
    "fps": 24,
    "seed": 99,
    "duration_s": 5.0,
}
OLD_INPUTS = {
    "reference_image_urls": ["jobs/j/inputs/a", "jobs/j/inputs/b"],
    "audio_url": "jobs/j/inputs/c",
    "elements": [{"frontal_image_url": "jobs/j/inputs/d", "reference_image_urls": ["e"]}],
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def unmigrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.sqlite'}"
        return
    if not postgres_available():
        pytest.skip("PostgreSQL is not running at 127.0.0.1:5432")
    url, drop = make_postgres_database()
    yield url
    drop()


def _insert_0001_jobs(url: str) -> None:
    engine = create_engine(url)
    now = datetime(2026, 11, 30, tzinfo=UTC).replace(tzinfo=None)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO accounts (id, name, kind, unlimited, balance_micros, created_at) "
                "VALUES ('acct', '', 'STANDARD', false, 0, :now)"
            ),
            {"now": now},
        )
        for job_id, (status, body) in {**OLD_FAILURES, "queued": (None, None)}.items():
            connection.execute(
                text(
                    "INSERT INTO jobs (id, account_id, model, engine, state, params, inputs, "
                    "price_micros, attempts, max_attempts, progress, created_at, error_status, "
                    "error_body) VALUES (:id, 'acct', 'm', 'preview', :state, :params, "
                    ":inputs, 0, 1, 3, 0, :now, :status, :body)"
                ),
                {
                    "id": job_id,
                    "state": "QUEUED" if status is None else "FAILED",
                    "params": json.dumps(OLD_PARAMS),
                    "inputs": json.dumps(OLD_INPUTS),
                    "now": now,
                    "status": status,
                    "body": None if body is None else json.dumps(body),
                },
            )
    engine.dispose()


def test_a_stored_failure_renders_the_same_venice_body_after_the_migration(
    unmigrated_url: str,
) -> None:
    command.upgrade(alembic_config(unmigrated_url), "0001")
    _insert_0001_jobs(unmigrated_url)

    upgrade(unmigrated_url)

    db = Database(unmigrated_url)
    try:
        for job_id, expected in OLD_FAILURES.items():
            assert retrieve_error(load_job(db, job_id)) == expected
        queued = load_job(db, "queued")
        assert queued.failure is None
        spec = queued.job_spec
        assert (spec.width, spec.height, spec.fps, spec.seed, spec.duration_s) == (
            854,
            480,
            24,
            99,
            5.0,
        )
        assert (spec.frame_count, spec.audio, spec.prompt) == (120, True, "Refer to <Video 1>")
        assert spec.media == Media(
            reference_images=("jobs/j/inputs/a", "jobs/j/inputs/b"),
            audio="jobs/j/inputs/c",
            elements=(Element(frontal_image="jobs/j/inputs/d", reference_images=("e",)),),
        )
    finally:
        db.dispose()


def test_downgrading_gives_back_the_old_bodies(unmigrated_url: str) -> None:
    config = alembic_config(unmigrated_url)
    command.upgrade(config, "0001")
    _insert_0001_jobs(unmigrated_url)
    upgrade(unmigrated_url)

    command.downgrade(config, "0001")

    engine = create_engine(unmigrated_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT id, error_status, error_body, inputs FROM jobs")
            ).all()
    finally:
        engine.dispose()
    for job_id, status, body, inputs in rows:
        decoded = json.loads(body) if isinstance(body, str) else body
        assert (status, decoded) == OLD_FAILURES.get(job_id, (None, None))
        assert (json.loads(inputs) if isinstance(inputs, str) else inputs) == OLD_INPUTS
