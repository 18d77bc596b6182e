"""`GET /workers`: the worker fleet, for the operator (admin keys only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from videoqueue.api.auth import AdminCaller
from videoqueue.api.context import AppContext, context
from videoqueue.fleet.views import fleet_views

router = APIRouter(tags=["Workers"])


def _fleet(ctx: AppContext) -> list[dict[str, Any]]:
    with ctx.db.read() as session:
        views = fleet_views(
            session, now=ctx.clock.now(), lost_after_seconds=ctx.fleet.lost_after_seconds
        )
    return [view.to_json() for view in views]


@router.get("/workers")
async def list_workers(request: Request, _caller: AdminCaller) -> JSONResponse:
    """Every registered worker process (a videoqueue extension; admin keys only): its host,
    pid, device, state (`running`, `stopping`, or `lost` when its heartbeat is older than
    `worker_lost_after_seconds`), each engine's setup state, its current job and its last
    heartbeat."""
    workers = await run_in_threadpool(_fleet, context(request))
    return JSONResponse({"object": "list", "data": workers})
