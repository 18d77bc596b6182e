"""The Prometheus metrics each process records (docs/observability.md).

`serve` gives its API and worker processes one folder (`metrics_folder`) before it starts
them; prometheus-client then writes every value to a file there, and `/metrics` in any API
process sums them all. Without it (tests, a lone process) values stay in memory.
"""

from __future__ import annotations

import time
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess

from videoqueue.metrics_folder import shared

JOB_SECONDS_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)

REGISTRY = CollectorRegistry()
"""This process's own metrics (read through the folder's files where there is one)."""

HTTP_REQUEST_SECONDS = Histogram(
    "videoqueue_http_request_duration_seconds",
    "Time from a request's arrival to its response's start, by route template and status",
    ["method", "route", "status"],
    registry=REGISTRY,
)
JOB_SECONDS = Histogram(
    "videoqueue_job_duration_seconds",
    "Time from a job's first start to its end, by engine and outcome (completed or failed)",
    ["engine", "outcome"],
    buckets=JOB_SECONDS_BUCKETS,
    registry=REGISTRY,
)
JOB_FAILURES = Counter(
    "videoqueue_job_failures",
    "Jobs that failed, by engine and failure kind",
    ["engine", "kind"],
    registry=REGISTRY,
)
REFUNDS = Counter(
    "videoqueue_refunds",
    "Charges given back, by reason (failed, worker_lost, cancelled)",
    ["reason"],
    registry=REGISTRY,
)
WEBHOOK_ATTEMPTS = Counter(
    "videoqueue_webhook_attempts",
    "Webhook delivery attempts, by outcome (delivered, retrying, given_up: the last one failed)",
    ["outcome"],
    registry=REGISTRY,
)
WORKERS_ALIVE = Gauge(
    "videoqueue_workers_alive",
    "Worker processes running",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
WORKER_LAST_SEEN = Gauge(
    "videoqueue_worker_last_seen_timestamp_seconds",
    "When each worker last looked for a job or renewed its job's lease (Unix time)",
    ["worker"],
    registry=REGISTRY,
    multiprocess_mode="livemax",
)


def process_gone(pid: int) -> None:
    """Drop a dead process's live gauges (its counters still count)."""
    if shared():
        multiprocess.mark_process_dead(pid)


def worker_seen(worker_id: str) -> None:
    WORKER_LAST_SEEN.labels(worker=worker_id).set(time.time())


def job_ended(
    engine: str, started: datetime | None, ended: datetime, failure_kind: str | None
) -> None:
    """A worker settled a job: its duration, and its failure if it failed."""
    outcome = "completed" if failure_kind is None else "failed"
    if started is not None:
        seconds = max(0.0, (ended - started).total_seconds())
        JOB_SECONDS.labels(engine=engine, outcome=outcome).observe(seconds)
    if failure_kind is not None:
        JOB_FAILURES.labels(engine=engine, kind=failure_kind).inc()


def refunded(reason: str) -> None:
    REFUNDS.labels(reason=reason).inc()


def webhook_attempted(outcome: str) -> None:
    WEBHOOK_ATTEMPTS.labels(outcome=outcome).inc()
