"""What every request handler needs, built once per app."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request

from videoqueue.auth.rate_limits import RatePolicies
from videoqueue.auth.siwx import SignInPolicy
from videoqueue.billing.x402 import TopUpTerms
from videoqueue.catalog.catalog import Catalog
from videoqueue.clock import Clock
from videoqueue.db.session import Database
from videoqueue.delivery.tokens import LinkSigner
from videoqueue.media.sandbox import DecodeSandbox
from videoqueue.settings import Settings
from videoqueue.storage.base import Storage


@dataclass(frozen=True)
class AppContext:
    settings: Settings
    db: Database
    storage: Storage
    catalog: Catalog
    clock: Clock
    link_signer: LinkSigner = field(kw_only=True)
    top_up_terms: TopUpTerms = field(kw_only=True)
    sign_in: SignInPolicy = field(kw_only=True)
    """What a `SIGN-IN-WITH-X` message must name (domains, chains)."""
    rate_policies: RatePolicies = field(kw_only=True)
    sandbox: DecodeSandbox = field(kw_only=True, default_factory=DecodeSandbox)
    """Where clients' media files are decoded (never in the API process itself)."""


def context(request: Request) -> AppContext:
    ctx = request.app.state.context
    assert isinstance(ctx, AppContext)
    return ctx
