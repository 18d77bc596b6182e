"""What every storage backend promises, and its one error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from videoqueue.errors import VideoqueueError


class ObjectNotFound(VideoqueueError):
    """Media could not be found. Request may be invalid, expired, or deleted."""

    status = 404


class Storage(Protocol):
    """A flat namespace of immutable objects addressed by key (`jobs/<id>/output.mp4`)."""

    def put_file(self, key: str, source: Path) -> int:
        """Store a copy of `source` under `key`, atomically; return its size in bytes."""
        ...

    def put_bytes(self, key: str, data: bytes) -> int:
        """Store `data` under `key`, atomically; return its size in bytes."""
        ...

    def fetch_to(self, key: str, destination: Path) -> None:
        """Copy the object to a local file. Raises `ObjectNotFound`."""
        ...

    def size(self, key: str) -> int:
        """The object's size in bytes. Raises `ObjectNotFound`."""
        ...

    def read_range(self, key: str, start: int, end: int, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Yield bytes `start` … `end` (inclusive). Raises `ObjectNotFound` before the first chunk."""
        ...

    def delete_prefix(self, prefix: str) -> None:
        """Remove every object whose key starts with `prefix` (missing is fine)."""
        ...

    def exists(self, key: str) -> bool:
        ...
