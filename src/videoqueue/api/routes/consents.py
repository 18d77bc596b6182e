"""`GET /consents`, `DELETE /consents/{id}`: the face-media consents an account has given."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from videoqueue.api.auth import Caller, require_caller
from videoqueue.api.context import AppContext, context
from videoqueue.consent import store
from videoqueue.consent.models import ConsentRecord
from videoqueue.errors import VideoqueueError

router = APIRouter(tags=["Consents"])

# Whoever may queue (a key or a signed-in wallet) may see and revoke what it attested.
ConsentCaller = Annotated[Caller, Depends(require_caller)]


class ConsentNotFound(VideoqueueError):
    """Consent record not found"""

    status = 404


def _as_json(record: ConsentRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "consent_flow": record.consent_flow,
        "consent_version": record.consent_version,
        "model": record.model,
        "created_at": record.created_at.isoformat().replace("+00:00", "Z"),
        "media": [{"sha256": m.sha256, "role": m.role} for m in record.media],
    }


def _list(ctx: AppContext, caller: Caller) -> list[dict[str, Any]]:
    with ctx.db.transaction() as session:
        return [_as_json(r) for r in store.list_consents(session, account_id=caller.account_id)]


def _delete(ctx: AppContext, caller: Caller, record_id: str) -> None:
    with ctx.db.transaction() as session:
        if not store.delete_consent(session, account_id=caller.account_id, record_id=record_id):
            raise ConsentNotFound()


@router.get("/consents")
async def list_consents(request: Request, caller: ConsentCaller) -> JSONResponse:
    """The face-media consents this account has attested (newest first), each with the SHA-256
    and role of the files it covers. Media listed here is not asked about again."""
    data = await run_in_threadpool(_list, context(request), caller)
    return JSONResponse({"object": "list", "data": data})


@router.delete("/consents/{consent_id}")
async def revoke_consent(consent_id: str, request: Request, caller: ConsentCaller) -> JSONResponse:
    """Revoke a consent: its record and file hashes are erased, and the next request with
    those files answers `409 needs_consent` again. Answers `{success: true}`."""
    await run_in_threadpool(_delete, context(request), caller, consent_id)
    return JSONResponse({"success": True})
