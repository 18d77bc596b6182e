"""`POST /webhooks/secret` and `GET /webhooks/deliveries`: an account's webhook signing secret
and what was sent to its webhooks (docs/webhooks.md), beside Venice's routes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from videoqueue.api.auth import Caller, require_caller
from videoqueue.api.context import context
from videoqueue.api.routes.video_jobs import iso_time, page_body, page_size
from videoqueue.catalog import issues as iss
from videoqueue.catalog.issues import InvalidParameters
from videoqueue.webhooks.views import DeliveryView, list_delivery_views, rotate_secret

router = APIRouter(tags=["Webhooks"])

LIST_KEYS = ("queue_id", "after", "limit")

AccountCaller = Annotated[Caller, Depends(require_caller)]


@router.post("/webhooks/secret")
async def create_secret(request: Request, caller: AccountCaller) -> JSONResponse:
    """Create the account's webhook signing secret, or replace it: `{secret}`, shown this
    once. Deliveries are signed with it from now on (retries of earlier ones included), per
    Standard Webhooks; verify them with it."""
    ctx = context(request)
    secret = await run_in_threadpool(rotate_secret, ctx.db, caller.account_id, ctx.clock)
    return JSONResponse({"secret": secret})


def delivery_item(view: DeliveryView) -> dict[str, Any]:
    return {
        "id": view.id,
        "queue_id": view.job_id,
        "event": view.event,
        "url": view.url,
        "status": str(view.state),
        "payload": view.payload,
        "created_at": iso_time(view.created_at),
        "next_attempt_at": iso_time(view.next_attempt_at),
        "finished_at": iso_time(view.finished_at),
        "attempts": [
            {
                "attempted_at": iso_time(a.attempted_at),
                "status_code": a.status_code,
                "error": a.error,
                "duration_ms": a.duration_ms,
            }
            for a in view.attempts
        ],
    }


@router.get("/webhooks/deliveries")
async def list_deliveries(request: Request, caller: AccountCaller) -> JSONResponse:
    """The account's webhook deliveries, newest first, each with its attempts:
    `{data, has_more, next_after}`.

    `queue_id` keeps one job's; `limit` (1-100, default 20) per page; `after` a delivery
    `id` (the last page's `next_after`) to read on from.
    """
    query = request.query_params
    found: list[iss.Issue] = []
    limit = page_size(query, LIST_KEYS, found)
    if found:
        raise InvalidParameters(found)
    page = await run_in_threadpool(
        list_delivery_views,
        context(request).db,
        caller.account_id,
        after=query.get("after"),
        limit=limit,
        job_id=query.get("queue_id"),
    )
    last = page.views[-1].id if page.views else None
    return page_body([delivery_item(view) for view in page.views], page.has_more, last)
