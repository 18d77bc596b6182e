"""How far a job has got, as its events stream tells it: a state, a fraction, a queue place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from videoqueue.jobs.models import Job
from videoqueue.jobs.states import JobState

Status = Literal["queued", "running", "completed", "failed", "cancelled"]
ENDED: frozenset[Status] = frozenset({"completed", "failed", "cancelled"})


@dataclass(frozen=True)
class JobStatus:
    """One snapshot of a job; `queue_position` is None unless it is queued."""

    status: Status
    progress: float
    queue_position: int | None

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "progress": round(self.progress, 3),
            "queue_position": self.queue_position,
        }


def ended_status(job: Job) -> JobStatus:
    """The end a finished job came to (one whose media is gone since included)."""
    if job.state == JobState.FAILED or (job.output_key is None and job.failure_kind is not None):
        return JobStatus("failed", job.progress, None)
    if job.state == JobState.COMPLETED or job.output_key is not None:
        return JobStatus("completed", 1.0, None)
    return JobStatus("cancelled", job.progress, None)
