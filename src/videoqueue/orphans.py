"""Noticing that the process which started ours is gone, killed before it could stop us."""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger(__name__)


def stop_when_orphaned(parent_pid: int, stop: threading.Event) -> None:
    """Set `stop` once `parent_pid` is no longer our parent; returns when `stop` is set."""
    while not stop.wait(1.0):
        if os.getppid() != parent_pid:
            log.warning("parent process %d is gone; stopping", parent_pid)
            stop.set()
