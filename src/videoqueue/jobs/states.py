"""A job's states and the one table of allowed transitions."""

from __future__ import annotations

import enum

from videoqueue.errors import VideoqueueError


class JobState(enum.StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    DELETED = "DELETED"
    EXPIRED = "EXPIRED"


TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.FAILED, JobState.CANCELLED}),
    # RUNNING → QUEUED is a lapsed lease handed back for another attempt.
    JobState.RUNNING: frozenset(
        {JobState.QUEUED, JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED}
    ),
    JobState.COMPLETED: frozenset({JobState.DELETED, JobState.EXPIRED}),
    JobState.FAILED: frozenset({JobState.DELETED, JobState.EXPIRED}),
    JobState.CANCELLED: frozenset({JobState.DELETED, JobState.EXPIRED}),
    JobState.DELETED: frozenset(),
    JobState.EXPIRED: frozenset(),
}

PENDING = frozenset({JobState.QUEUED, JobState.RUNNING})
ENDED = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED})
"""Finished, with their media (output or inputs) still kept."""
GONE = frozenset({JobState.DELETED, JobState.EXPIRED})
"""Their media removed: retrieve answers as for no such job."""


class InvalidTransition(VideoqueueError):
    """Job state transition not allowed"""

    status = 409


def check_transition(current: JobState, target: JobState) -> None:
    """Raise `InvalidTransition` unless `current → target` is in the table."""
    if target not in TRANSITIONS[current]:
        raise InvalidTransition(f"Job cannot go from {current} to {target}")
