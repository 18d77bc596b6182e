"""Serving the app from one or several API processes on one port, through uvicorn.

With several processes, uvicorn's supervisor binds the socket and spawns each API process,
which builds its own app from the settings its parent left in the environment: they share
the database (SQLite's WAL takes several processes) and the link secret (one file in the
data dir, or the configured one), and keep nothing in memory that another process needs.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time

from fastapi import FastAPI

from videoqueue import cpus, heap
from videoqueue.logs import resolve_log_format, uvicorn_log_config
from videoqueue.settings import Settings

SETTINGS_ENV = "VIDEOQUEUE_SERVE_SETTINGS"
"""Where `serve_api` leaves the settings (and its pid) for the API processes it spawns."""

HEALTHCHECK_TIMEOUT_S = 30

log = logging.getLogger(__name__)


def serve_api(settings: Settings, processes: int) -> None:
    """Serve the API on the settings' host and port until SIGTERM or SIGINT, then drain the
    requests in flight for up to `api_shutdown_grace_seconds`.

    One process serves in this one; more are uvicorn's workers, stopped before this returns.
    """
    import uvicorn

    from videoqueue.api.zero_copy import ZeroCopyHttpToolsProtocol

    os.environ[SETTINGS_ENV] = json.dumps(
        {"settings": settings.model_dump(mode="json"), "parent_pid": os.getpid()}
    )
    uvicorn.run(
        f"{__name__}:app_from_environment",
        factory=True,
        workers=processes,
        # httptools writes a response body to the socket as given (h11 copies each chunk),
        # and ours adds zero-copy file sends, by asyncio's `loop.sendfile` (uvloop has none).
        http=ZeroCopyHttpToolsProtocol,
        loop="asyncio",
        host=settings.host,
        port=settings.port,
        log_level="info",
        log_config=uvicorn_log_config(resolve_log_format(settings.log_format)),
        access_log=False,  # our request line (videoqueue.api.requests) has the request id
        # uvicorn replaces an API process that does not answer its ping in time; on a busy
        # machine a process still importing the app at start-up can take longer than 5 s.
        timeout_worker_healthcheck=HEALTHCHECK_TIMEOUT_S,
        # On SIGTERM uvicorn stops accepting, then lets requests in flight finish this long.
        timeout_graceful_shutdown=settings.api_shutdown_grace_seconds,
    )


def app_from_environment() -> FastAPI:
    """The app factory uvicorn calls in each API process."""
    from videoqueue.api.app import create_app

    passed = json.loads(os.environ[SETTINGS_ENV])
    parent_pid = int(passed["parent_pid"])
    if parent_pid != os.getpid():
        threading.Thread(
            target=_exit_when_orphaned, args=(parent_pid,), daemon=True, name="orphan-watch"
        ).start()
    settings = Settings.model_validate(passed["settings"])
    if settings.api_cpu_pinning:
        # Here, in the thread that runs the event loop, before the loop starts its threads.
        cpus.claim_core(cpus.API_CORES)
    app = create_app(settings)
    heap.freeze_startup_objects()
    return app


def _exit_when_orphaned(parent_pid: int) -> None:
    """Shut this API process down once `serve` is gone (killed before it could stop us)."""
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    log.warning("serve (pid %d) is gone; stopping", parent_pid)
    os.kill(os.getpid(), signal.SIGTERM)
