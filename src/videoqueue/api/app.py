"""The ASGI application: Venice's video API under `/api/v1`, OpenAI's videos API under `/v1`
(and `/api/v1`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from videoqueue.api.body import BodySizeLimit
from videoqueue.api.context import AppContext
from videoqueue.api.errors import UnexpectedErrors, install_error_handlers
from videoqueue.api.limits import RateLimitHeaders
from videoqueue.api.model_access import ModelHeaders
from videoqueue.api.openai_shape import PREFIXES as OPENAI_PREFIXES
from videoqueue.api.policies import (
    file_offload,
    job_terms,
    link_policy,
    rate_policies,
    sign_in_policy,
    top_up_terms,
)
from videoqueue.api.requests import RequestObserver
from videoqueue.api.routes import (
    api_keys,
    billing,
    consents,
    events,
    input_links,
    metrics,
    models,
    openai_videos,
    playground,
    share,
    video,
    video_jobs,
    webhooks,
    workers,
    x402,
)
from videoqueue.api.wallet_auth import WalletRequests, WalletServices
from videoqueue.billing.facilitator import facilitator_at
from videoqueue.catalog.catalog import load_catalog
from videoqueue.catalog.media_intake import MediaIntake
from videoqueue.clock import Clock, SystemClock
from videoqueue.db.session import Database
from videoqueue.delivery.links import LinkTerms
from videoqueue.delivery.secret import load_link_secret
from videoqueue.delivery.tokens import LinkSigner
from videoqueue.engines.registry import engine_factories
from videoqueue.fleet.readiness import ReadyEngines
from videoqueue.jobs.service import JobService
from videoqueue.media.sandbox import DecodeSandbox
from videoqueue.outbound import fetch_policy
from videoqueue.settings import Settings
from videoqueue.storage.factory import storage_from_url
from videoqueue.workers import fleet_terms, input_link_terms

API_PREFIX = "/api/v1"


def create_app(
    settings: Settings, *, clock: Clock | None = None, wallets: WalletServices | None = None
) -> FastAPI:
    """An app over the settings' database and storage (the schema must already be migrated).

    `wallets` replaces the x402 facilitator named by the settings (and may add an EIP-1271
    contract-wallet verifier).
    """
    clock = clock or SystemClock()
    wallets = wallets or WalletServices(
        facilitator_at(
            settings.x402_facilitator_url, settings.x402_facilitator_timeout_seconds, clock
        )
    )
    db = Database(settings.resolved_database_url)
    storage = storage_from_url(settings.resolved_storage_url, settings.s3_config())
    catalog = load_catalog(settings.catalog_path, engines=engine_factories(settings.engines))
    sandbox = DecodeSandbox()
    links = LinkTerms(
        signer=LinkSigner(load_link_secret(settings.link_secret, settings.data_dir)),
        policy=link_policy(settings),
        public_base_url=settings.resolved_public_base_url,
    )
    jobs = JobService(
        db=db,
        storage=storage,
        catalog=catalog,
        clock=clock,
        intake=MediaIntake(fetch_policy(settings), settings.media_max_video_bytes, sandbox),
        links=links,
        terms=job_terms(settings),
    )
    fleet = fleet_terms(settings)
    ctx = AppContext(
        settings=settings,
        db=db,
        storage=storage,
        catalog=catalog,
        clock=clock,
        links=links,
        inputs=input_link_terms(settings),
        top_up_terms=top_up_terms(settings),
        sign_in=sign_in_policy(settings, wallets.contract_wallets),
        rate_policies=rate_policies(settings),
        sandbox=sandbox,
        jobs=jobs,
        fleet=fleet,
        ready_engines=ReadyEngines(db, clock, fleet.lost_after_seconds),
        offload=file_offload(settings),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        ctx.db.dispose()  # close pooled connections rather than leave them to the GC
        ctx.sandbox.close()

    app = FastAPI(
        title="videoqueue",
        version="0.1.0",
        lifespan=lifespan,
        description="A self-hosted server for Venice.ai's video API and OpenAI's videos API.",
    )
    app.state.context = ctx
    app.state.wallets = wallets
    install_error_handlers(app)
    app.include_router(video.router, prefix=API_PREFIX)
    app.include_router(video_jobs.router, prefix=API_PREFIX)
    app.include_router(events.router, prefix=API_PREFIX)
    app.include_router(models.router, prefix=API_PREFIX)
    app.include_router(consents.router, prefix=API_PREFIX)
    app.include_router(x402.router, prefix=API_PREFIX)
    app.include_router(api_keys.router, prefix=API_PREFIX)
    app.include_router(billing.router, prefix=API_PREFIX)
    app.include_router(webhooks.router, prefix=API_PREFIX)
    app.include_router(workers.router, prefix=API_PREFIX)
    app.include_router(share.router)  # `/v1/share/read/<token>`: the download_url, no key
    app.include_router(input_links.router)  # `/v1/share/input/<token>`: inputs, for upstreams
    app.include_router(metrics.router)  # `/metrics`, for Prometheus
    if settings.playground:  # `/` and `/playground/*`: the playground page
        app.include_router(playground.router)
    for prefix in OPENAI_PREFIXES:  # OpenAI's `/v1/videos`; documented once
        app.include_router(
            openai_videos.router, prefix=prefix, include_in_schema=prefix == OPENAI_PREFIXES[0]
        )
    app.add_middleware(RateLimitHeaders)  # `x-ratelimit-*` headers; counts failed requests
    app.add_middleware(ModelHeaders)  # Venice's deprecation headers
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(WalletRequests, context=ctx)
    app.add_middleware(UnexpectedErrors)  # last added runs first: it sees every exception
    app.add_middleware(RequestObserver)  # outside it, so even a 500 has its request id
    return app
