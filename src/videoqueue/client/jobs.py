"""What the client hands back: a queued job, its status on a poll, progress while waiting, and
the account's jobs as videoqueue's `/video/jobs` lists them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class QueuedJob:
    """A job as `/video/queue` answered it; `download_url` only for private models."""

    model: str
    queue_id: str
    download_url: str | None = None


@dataclass(frozen=True)
class JobStatus:
    """One answer of `/video/retrieve`: still processing, or done (`video` holds the MP4 bytes,
    or is None when the video is to be fetched from the job's `download_url`)."""

    status: str
    average_execution_ms: int | None = None
    execution_duration_ms: int | None = None
    progress: float | None = None
    """The server's own fraction (videoqueue sends it; Venice does not)."""
    queue_position: int | None = None
    """Jobs ahead of this one, while it waits (videoqueue only)."""
    video: bytes | None = None

    @property
    def done(self) -> bool:
        return self.video is not None or self.status == "COMPLETED"

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> JobStatus:
        return cls(
            status=str(body.get("status", "PROCESSING")),
            average_execution_ms=_number(body.get("average_execution_time"), int),
            execution_duration_ms=_number(body.get("execution_duration"), int),
            progress=_number(body.get("progress"), float),
            queue_position=_number(body.get("queue_position"), int),
        )

    def fraction(self) -> float | None:
        """How far the job has got, 0 to 1: the server's progress, else its elapsed time over
        the model's typical run (capped below 1 until it is done), else None."""
        if self.done:
            return 1.0
        if self.progress is not None:
            return min(max(self.progress, 0.0), 1.0)
        if self.execution_duration_ms is not None and self.average_execution_ms:
            return min(self.execution_duration_ms / self.average_execution_ms, 0.99)
        return None


@dataclass(frozen=True)
class Progress:
    """What `wait()` tells its callback after each poll."""

    state: str
    """`QUEUED` while the server reports a queue position, then the server's status
    (`PROCESSING`, `COMPLETED`)."""
    fraction: float | None
    queue_position: int | None
    elapsed_s: float
    """Seconds since `wait()` started."""

    @property
    def eta_s(self) -> float | None:
        """Seconds left, extrapolated from the fraction done so far."""
        if self.fraction is None or self.fraction <= 0:
            return None
        return self.elapsed_s * (1 - self.fraction) / self.fraction

    @classmethod
    def of(cls, status: JobStatus, elapsed_s: float) -> Progress:
        waiting = status.queue_position is not None and not status.done
        state = status.status
        if status.done:
            state = "COMPLETED"
        elif waiting:
            state = "QUEUED"
        return cls(
            state=state,
            fraction=status.fraction(),
            queue_position=status.queue_position if waiting else None,
            elapsed_s=elapsed_s,
        )


@dataclass(frozen=True)
class JobFailure:
    """Why a job failed, and whether its charge went back."""

    kind: str
    message: str
    refunded: bool


@dataclass(frozen=True)
class JobSummary:
    """One of the account's jobs, as `/video/jobs` lists it (videoqueue only)."""

    queue_id: str
    model: str
    status: str
    """`QUEUED`, `RUNNING`, `COMPLETED`, `FAILED` or `CANCELLED`."""
    progress: float
    queue_position: int | None
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    failure: JobFailure | None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> JobSummary:
        failure = body.get("failure")
        return cls(
            queue_id=str(body["queue_id"]),
            model=str(body["model"]),
            status=str(body["status"]),
            progress=_number(body.get("progress"), float) or 0.0,
            queue_position=_number(body.get("queue_position"), int),
            created_at=_moment(body.get("created_at")),
            started_at=_moment(body.get("started_at")),
            finished_at=_moment(body.get("finished_at")),
            failure=None
            if not isinstance(failure, dict)
            else JobFailure(
                kind=str(failure.get("kind")),
                message=str(failure.get("message")),
                refunded=bool(failure.get("refunded")),
            ),
        )


@dataclass(frozen=True)
class JobPage:
    """One page of `/video/jobs`, newest first; `next_cursor` reads on (None on the last)."""

    items: tuple[JobSummary, ...]
    next_cursor: str | None


@dataclass(frozen=True)
class Cancelled:
    """A job `/video/cancel` stopped (and refunded in full, on videoqueue)."""

    model: str
    queue_id: str


def _moment(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _number(value: Any, kind: type[int] | type[float]) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return kind(value)
