"""Which CPU cores a process's threads run on, and at what priority (Linux; elsewhere these
do nothing).

An API process is one event loop and a pool of threads that take turns holding the GIL.
Left to the scheduler, the loop and the thread doing a request's database work run on two
cores at once and pass the GIL, and the cache lines of every object both touch, back and
forth between them: a queue request costs about half as much CPU again as it does when the
process keeps to one core (bench/README.md). So each API process claims a core of its own.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)

API_CORES = "videoqueue-api-cpu"
"""The names under which API processes claim their cores."""

_claims: list[socket.socket] = []
"""The claims this process holds: each lasts while its socket is open, so until it exits."""

_before_pinning: list[frozenset[int]] = []
"""The cores this process was allowed before it first pinned a thread (the operator's
`taskset` or cpuset), once it has."""


def _claim(name: str) -> bool:
    """Hold `name` until this process exits, unless another process holds it: an abstract
    UNIX socket address (Linux), which the kernel frees when its holder dies, however."""
    claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        claim.bind("\0" + name)
    except OSError:
        claim.close()
        return False
    _claims.append(claim)
    return True


def claim_core(namespace: str) -> int | None:
    """Keep the calling thread, and the threads and processes it starts from now on, on one
    core no other process has claimed in `namespace`; that core, or None where every allowed
    core is claimed, where only one is allowed, or where the platform cannot pin."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return None
    for core in cores:
        if _claim(f"{namespace}-{core}"):
            if not _before_pinning:
                _before_pinning.append(frozenset(cores))
            os.sched_setaffinity(0, {core})
            log.info("API process %d runs on CPU core %d", os.getpid(), core)
            return core
    return None


def unpinned_cores() -> frozenset[int]:
    """The cores this process may use apart from its claims: those it was allowed before
    `claim_core` first pinned a thread of it, else those it is allowed now (empty where the
    platform cannot pin)."""
    if _before_pinning:
        return _before_pinning[0]
    if not hasattr(os, "sched_getaffinity"):
        return frozenset()
    return frozenset(os.sched_getaffinity(0))


def allow_cores(cores: frozenset[int]) -> None:
    """Let the calling thread run on `cores` (its parent's `unpinned_cores()`): for a child
    process started by a pinned thread, whose work (decoding, say) should not share its
    parent's one core, nor leave the cores the operator gave its parent."""
    if cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cores)


def lower_priority(niceness: int) -> None:
    """Run the calling thread, and the threads and processes it starts from now on, at
    `niceness` (as `nice` counts it), or at its own where that is lower already: priority is
    only ever given up, which needs no privilege. Linux sets it per thread, so a process
    calls this before it starts any."""
    if not hasattr(os, "setpriority"):
        return
    if niceness > os.getpriority(os.PRIO_PROCESS, 0):
        os.setpriority(os.PRIO_PROCESS, 0, niceness)
