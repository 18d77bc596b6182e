"""The threads an API process runs requests' database work in: few, taken in arrival order.

Starlette hands each request's blocking work to a pool of 40 threads. Under load, 32 queue
requests then each hold a thread and take turns on the GIL with the event loop, and the one
holding SQLite's write lock (or, on PostgreSQL, an account's row) waits for the GIL behind the
rest after each statement: locks are held longest exactly when they are most wanted. Work
that only talks to the database runs instead in a handful of threads (`api_database_threads`)
that requests wait for in the order they came (anyio's limiter queues them without a thread).
Work that may wait on the network (fetching media, storage) stays in the default pool, so a
slow download never holds up a poll.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from anyio import CapacityLimiter, to_thread
from anyio.lowlevel import RunVar

T = TypeVar("T")

_LIMITER: RunVar[CapacityLimiter] = RunVar("videoqueue_database_threads")
"""This event loop's limiter (one per loop, as anyio's own default limiter)."""


async def in_database_thread(threads: int, work: Callable[..., T], *args: object) -> T:
    """`work(*args)` in one of `threads` threads for database work, once one is free."""
    try:
        limiter = _LIMITER.get()
    except LookupError:
        limiter = CapacityLimiter(threads)
        _LIMITER.set(limiter)
    return await to_thread.run_sync(work, *args, limiter=limiter)
