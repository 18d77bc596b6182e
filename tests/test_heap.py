"""What start-up leaves is collected, and what survives it is out of the collector's reach."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from videoqueue.heap import freeze_startup_objects


class _Node:
    def __init__(self) -> None:
        self.link: object = None


@pytest.fixture
def collector_off() -> Iterator[None]:
    """No automatic collection meanwhile (only the one under test), and nothing of this
    process stays frozen afterwards."""
    gc.disable()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.enable()


@pytest.mark.usefixtures("collector_off")
def test_start_up_garbage_is_collected_then_what_survives_is_frozen() -> None:
    garbage = _Node()
    garbage.link = garbage  # a cycle: only the collector frees it
    collected = weakref.ref(garbage)
    del garbage
    survivor = _Node()
    frozen_before = gc.get_freeze_count()

    freeze_startup_objects()

    assert collected() is None
    assert gc.get_freeze_count() > frozen_before
    assert not any(tracked is survivor for tracked in gc.get_objects())
