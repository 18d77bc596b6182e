"""`GET /metrics`: Prometheus's text format, from every process's files and the database."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from videoqueue import metrics
from videoqueue.api.auth import AdminKeyRequired, bearer_secret, require_admin, require_api_key
from videoqueue.api.context import AppContext, context
from videoqueue.jobs import store
from videoqueue.metrics_folder import shared

router = APIRouter(tags=["Operations"])


class DatabaseCollector:
    """Gauges read from the database at scrape time: jobs by state and model, and per engine
    the queue's depth and the age of its oldest job."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        now = self.ctx.clock.now()
        with self.ctx.db.read() as session:
            by_state = store.jobs_by_state_and_model(session)
            queued = store.queued_by_engine(session)
        jobs = GaugeMetricFamily(
            "videoqueue_jobs", "Jobs in the database, by state and model", labels=["state", "model"]
        )
        for state, model, count in by_state:
            jobs.add_metric([state.value.lower(), model], count)
        depth = GaugeMetricFamily(
            "videoqueue_queue_depth", "Jobs queued, by engine", labels=["engine"]
        )
        age = GaugeMetricFamily(
            "videoqueue_queue_oldest_age_seconds",
            "How long the oldest queued job of each engine has waited",
            labels=["engine"],
        )
        for engine, count, oldest in queued:
            depth.add_metric([engine], count)
            age.add_metric([engine], max(0.0, (now - oldest).total_seconds()))
        yield from (jobs, depth, age)


def _scrape(ctx: AppContext) -> bytes:
    registry = CollectorRegistry()
    if shared():
        MultiProcessCollector(registry)  # every process's values, this one's included
    else:
        registry.register(metrics.REGISTRY)
    registry.register(DatabaseCollector(ctx))
    return generate_latest(registry)


def _on_loopback(request: Request) -> bool:
    try:
        return request.client is not None and ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:
        return False


async def _admit(request: Request) -> None:
    access = context(request).settings.metrics_access
    if access == "open" or (access == "loopback" and _on_loopback(request)):
        return
    if bearer_secret(request) is None:
        raise AdminKeyRequired()
    await require_admin(await require_api_key(request))


@router.get("/metrics", response_model=None)
async def scrape_metrics(request: Request) -> Response:
    """Prometheus metrics of every API and worker process `serve` runs, and of the queue.

    Who may read them is the `metrics_access` setting (default: loopback clients without a
    key, others with an admin key).
    """
    await _admit(request)
    body = await run_in_threadpool(_scrape, context(request))
    return Response(body, media_type=CONTENT_TYPE_LATEST)
