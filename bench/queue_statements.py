"""What one `/video/queue` request costs inside the API process: the SQL statements and
transactions it runs, and where its CPU time goes, against one `/video/quote` request.

The app runs in this process (httpx over ASGI, no sockets) on a fresh SQLite data dir, or on a
fresh PostgreSQL database with `--postgres`. Statements are counted with SQLAlchemy's
`before_cursor_execute`; the CPU profile is cProfile over `--requests` queue requests, summed
by the package each function belongs to.

    .venv/bin/python -m bench.queue_statements [--requests 300] [--postgres] [--show-sql]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import re
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from bench.queue import MODEL, QUEUE_BODY, QUOTE_BODY, make_database, make_key
from sqlalchemy import event

from videoqueue.api.app import create_app
from videoqueue.db.migrate import upgrade
from videoqueue.db.session import Database
from videoqueue.settings import Settings

PACKAGES = (
    "sqlalchemy",
    "psycopg",
    "starlette",
    "fastapi",
    "pydantic",
    "anyio",
    "httpx",
    "videoqueue",
    "asyncio",
)


class Recorder:
    """Every statement and transaction start on one engine, while `on`."""

    def __init__(self) -> None:
        self.on = False
        self.statements: list[str] = []
        self.transactions = 0

    def attach(self, db: Database) -> None:
        @event.listens_for(db.engine, "before_cursor_execute")
        def _statement(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if self.on:
                self.statements.append(" ".join(statement.split()))

        @event.listens_for(db.engine, "begin")
        def _begin(_conn: Any) -> None:
            if self.on:
                self.transactions += 1


def _verb(statement: str) -> str:
    """`SELECT accounts`, `UPDATE api_keys`, … : what a statement does to which table."""
    found = re.search(r"\b(FROM|INTO|UPDATE|JOIN)\s+(\w+)", statement)
    return f"{statement.split()[0]} {found.group(2) if found else ''}".strip()


def _package(filename: str, name: str) -> str:
    if "sqlite3" in name:
        return "sqlite3 (C)"
    for package in PACKAGES:
        if f"/{package}/" in filename:
            return package
    return "stdlib/other"


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> httpx.Response:
    response = await client.post(path, json=body)
    assert response.status_code == 200, response.text
    return response


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="queue requests profiled")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--show-sql", action="store_true", help="print each statement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vq-bench-") as tmp:
        database = make_database("postgres" if args.postgres else "sqlite", Path(tmp))
        try:
            upgrade(database.url)
            settings = Settings(
                data_dir=Path(tmp), database_url=database.url, queue_requests_per_minute=10**9
            )
            app = create_app(settings)
            db: Database = app.state.context.db
            key = make_key(db)
            _measure(app, db, key, args)
        finally:
            database.drop()


def _profile_every_thread() -> list[cProfile.Profile]:
    """A profile for this thread and one for each thread started from now on (the thread pool
    that runs the routes' database work, which a main-thread profile would not see)."""
    # Each thread's CPU clock, so time a thread spends waiting (for I/O, a lock, the GIL after
    # a hop between threads) is not counted as the function's.
    profiles = [cProfile.Profile(time.thread_time)]

    def start(*_: Any) -> None:
        profile = cProfile.Profile(time.thread_time)
        profiles.append(profile)
        profile.enable()  # replaces this hook in its thread

    threading.setprofile(start)
    return profiles


def _client(app: Any, key: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.AsyncClient(transport=transport, base_url="http://t/api/v1", headers=headers)


async def _count_and_time(
    app: Any, db: Database, key: str, args: argparse.Namespace
) -> tuple[dict[str, tuple[int, int]], dict[str, float], dict[str, float]]:
    """Statements and transactions of one request of each kind; wall and CPU time of each."""
    recorder = Recorder()
    recorder.attach(db)
    async with _client(app, key) as client:
        for _ in range(20):  # warm caches, pools and the key's last-used stamp
            await _post(client, "/video/queue", QUEUE_BODY)
            await _post(client, "/video/quote", QUOTE_BODY)
        counts = {}
        for path, body in (("/video/quote", QUOTE_BODY), ("/video/queue", QUEUE_BODY)):
            recorder.on, recorder.statements, recorder.transactions = True, [], 0
            await _post(client, path, body)
            recorder.on = False
            counts[path] = (len(recorder.statements), recorder.transactions)
            statements, transactions = len(recorder.statements), recorder.transactions
            print(f"{path}: {statements} statements in {transactions} transactions")
            for statement, n in Counter(_verb(s) for s in recorder.statements).items():
                print(f"  {n} x {statement}")
            if args.show_sql:
                for statement in recorder.statements:
                    print(f"    {statement[:160]}")

        timings, cpu = {}, {}
        for path, body in (("/video/quote", QUOTE_BODY), ("/video/queue", QUEUE_BODY)):
            started, cpu_started = time.perf_counter(), time.process_time()
            for _ in range(args.requests):
                await _post(client, path, body)
            timings[path] = (time.perf_counter() - started) / args.requests
            cpu[path] = (time.process_time() - cpu_started) / args.requests
    return counts, timings, cpu


async def _profile(app: Any, key: str, requests: int, profiles: list[cProfile.Profile]) -> None:
    async with _client(app, key) as client:
        for _ in range(20):  # this event loop's thread pool, started under the profile hook
            await _post(client, "/video/queue", QUEUE_BODY)
        for profile in profiles:
            profile.clear()
        profiles[0].enable()
        for _ in range(requests):
            await _post(client, "/video/queue", QUEUE_BODY)
        profiles[0].disable()


def _measure(app: Any, db: Database, key: str, args: argparse.Namespace) -> None:
    # Timed first, unprofiled; then profiled in a second event loop, whose new thread pool
    # the hook profiles (a profile runs in the thread that enabled it, until it ends).
    counts, timings, cpu = asyncio.run(_count_and_time(app, db, key, args))
    profiles = _profile_every_thread()
    asyncio.run(_profile(app, key, args.requests, profiles))
    threading.setprofile(None)

    stats = pstats.Stats(*profiles)
    own: Counter[str] = Counter()
    for (filename, _line, name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        own[_package(filename, name)] += tottime
    total = sum(own.values())
    print(
        f"\nCPU of {args.requests} queue requests by package, all threads (own CPU time "
        f"under cProfile, {total / args.requests * 1000:.2f} ms a request with its overhead):"
    )
    for package, seconds in own.most_common():
        print(f"  {package:<14} {100 * seconds / total:5.1f}%")
    quote_ms, queue_ms = (timings[p] * 1000 for p in ("/video/quote", "/video/queue"))
    print(f"\none client, in process (CPU: the process's, the client's share included), {MODEL}:")
    print(f"{'request':<14} {'ms':>6} {'CPU ms':>7} {'statements':>11} {'transactions':>13}")
    for path, per in timings.items():
        print(
            f"{path:<14} {per * 1000:>6.2f} {cpu[path] * 1000:>7.2f} {counts[path][0]:>11} "
            f"{counts[path][1]:>13}"
        )
    cpu_ratio = cpu["/video/queue"] / cpu["/video/quote"]
    print(f"queue / quote: {queue_ms / quote_ms:.2f}x time, {cpu_ratio:.2f}x CPU")


if __name__ == "__main__":
    main()
