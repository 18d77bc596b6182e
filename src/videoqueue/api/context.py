"""What every request handler needs, built once per app."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from videoqueue.api.mp4 import FileOffload
from videoqueue.auth.rate_limits import RatePolicies
from videoqueue.auth.siwx import SignInPolicy
from videoqueue.billing.x402 import TopUpTerms
from videoqueue.catalog.catalog import Catalog
from videoqueue.clock import Clock
from videoqueue.db.session import Database
from videoqueue.delivery.inputs import InputLinks
from videoqueue.delivery.links import LinkTerms
from videoqueue.fleet.readiness import ReadyEngines
from videoqueue.fleet.terms import FleetTerms
from videoqueue.jobs.service import JobService
from videoqueue.media.sandbox import DecodeSandbox
from videoqueue.settings import Settings
from videoqueue.storage.base import Storage


@dataclass(frozen=True, kw_only=True)
class AppContext:
    settings: Settings
    db: Database
    storage: Storage
    catalog: Catalog
    clock: Clock
    links: LinkTerms
    """How download links are made and how hard each may be used."""
    inputs: InputLinks
    """How the links workers sign to jobs' inputs are checked."""
    top_up_terms: TopUpTerms
    sign_in: SignInPolicy
    """What a `SIGN-IN-WITH-X` message must name (domains, chains)."""
    rate_policies: RatePolicies
    sandbox: DecodeSandbox
    """Where clients' media files are decoded (never in the API process itself)."""
    jobs: JobService
    """The order flow: submit, quote, retrieve, complete."""
    fleet: FleetTerms
    """When a worker counts as lost."""
    ready_engines: ReadyEngines
    """The engines live workers have ready (`/models`' `offline`)."""
    offload: FileOffload
    """Whether the reverse proxy sends stored MP4s (`file_offload`)."""


def context(request: Request) -> AppContext:
    ctx = request.app.state.context
    assert isinstance(ctx, AppContext)
    return ctx
