"""A job's spec survives storage, including specs stored by older versions."""

from __future__ import annotations

from tests.conftest import tiny_spec
from videoqueue.catalog.entry import DEFAULT_MAX_RUN_SECONDS
from videoqueue.engines.base import Element, Media
from videoqueue.jobs.spec import JobSpec


def test_a_spec_round_trips_through_json() -> None:
    media = Media(
        image="in/a",
        reference_images=("in/b", "in/c"),
        elements=(Element(frontal_image="in/d", reference_images=("in/e",)),),
    )
    spec = tiny_spec("waves", max_run_seconds=90.0, media=media)
    assert JobSpec.from_json(spec.to_json()) == spec


def test_a_spec_stored_before_time_limits_gets_the_default_limit() -> None:
    stored = tiny_spec("waves").to_json()
    del stored["max_run_seconds"]
    assert JobSpec.from_json(stored).max_run_seconds == DEFAULT_MAX_RUN_SECONDS


def test_the_time_limit_is_the_workers_and_not_told_to_the_engine() -> None:
    job = tiny_spec("waves", max_run_seconds=90.0).engine_input(
        job_id="j", model="m", media=Media()
    )
    assert not hasattr(job, "max_run_seconds")
