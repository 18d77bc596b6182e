"""The ASGI application: Venice's video API under `/api/v1`."""

from __future__ import annotations

from fastapi import FastAPI

from videoqueue.api.body import BodySizeLimit
from videoqueue.api.context import AppContext
from videoqueue.api.errors import install_error_handlers
from videoqueue.api.routes import models, video
from videoqueue.catalog.catalog import load_catalog
from videoqueue.clock import Clock, SystemClock
from videoqueue.db.session import Database
from videoqueue.settings import Settings
from videoqueue.storage.factory import storage_from_url

API_PREFIX = "/api/v1"


def create_app(settings: Settings, *, clock: Clock | None = None) -> FastAPI:
    """An app over the settings' database and storage (the schema must already be migrated)."""
    ctx = AppContext(
        settings=settings,
        db=Database(settings.resolved_database_url),
        storage=storage_from_url(settings.resolved_storage_url),
        catalog=load_catalog(settings.catalog_path),
        clock=clock or SystemClock(),
    )
    app = FastAPI(title="videoqueue", version="0.1.0",
                  description="A self-hosted server for Venice.ai's video API.")
    app.state.context = ctx
    install_error_handlers(app)
    app.include_router(video.router, prefix=API_PREFIX)
    app.include_router(models.router, prefix=API_PREFIX)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    return app
