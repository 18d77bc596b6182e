"""How often workers say they are alive, and when the fleet counts one lost or forgets it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FleetTerms:
    heartbeat_seconds: float = 10.0
    """How often a worker writes its row, idle or not."""
    lost_after_seconds: float = 60.0
    """A worker silent longer than this is `lost`: its engines keep no model online."""
    forget_after_seconds: float = 86_400.0
    """A worker silent longer than this is deleted by the next worker that starts."""
