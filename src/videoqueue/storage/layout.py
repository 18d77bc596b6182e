"""Where a job's files live in storage: one prefix per job, inputs by content hash."""

from __future__ import annotations

JOBS_PREFIX = "jobs/"


def job_prefix(job_id: str) -> str:
    """Every object of the job starts with this (deleting it removes them all)."""
    return f"{JOBS_PREFIX}{job_id}/"


def input_key(job_id: str, sha256: str) -> str:
    """An input file, named by its content so one copy serves every field that sends it."""
    return f"{job_prefix(job_id)}inputs/{sha256}"


def output_key(job_id: str) -> str:
    """The finished MP4."""
    return f"{job_prefix(job_id)}output.mp4"


def job_id_of(key: str) -> str | None:
    """The job whose prefix `key` lies under (None for a key outside the layout)."""
    job_id, slash, rest = key.removeprefix(JOBS_PREFIX).partition("/")
    if not key.startswith(JOBS_PREFIX) or not job_id or not slash or not rest:
        return None
    return job_id
