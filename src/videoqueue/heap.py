"""Keeping the garbage collector's full passes short in long-running processes.

An API process holds about 160,000 objects once its app is built (modules, the catalogue,
schemas, SQLAlchemy's tables) that live as long as the process, and a worker about 110,000.
Left in the collector's oldest generation, each full pass walks all of them: 50-70 ms with
the event loop and every request stopped (or, in a worker, perhaps SQLite's write lock held),
a few times a minute under load. Frozen after start-up they are never walked again, and a full
pass takes a few ms.
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Collect what start-up left as garbage, then move every surviving object out of the
    collector's reach for good (start-up state is never freed anyway)."""
    gc.collect()
    gc.freeze()
