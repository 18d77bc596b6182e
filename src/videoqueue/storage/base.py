"""What every storage backend promises, and its errors."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from videoqueue.errors import VideoqueueError


class ObjectNotFound(VideoqueueError):
    """Media could not be found. Request may be invalid, expired, or deleted."""

    status = 404


class StorageUnavailable(VideoqueueError):
    """Media storage is temporarily unavailable. Please try again shortly."""

    status = 503
    code = "STORAGE_UNAVAILABLE"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "5"}


@dataclass(frozen=True)
class StoredObject:
    """One object as a listing shows it."""

    key: str
    size: int
    modified_at: datetime
    """When it was last written (timezone-aware)."""


class Storage(Protocol):
    """A flat namespace of immutable objects addressed by key (`jobs/<id>/output.mp4`).

    Every method may raise `StorageUnavailable` when the backend cannot be reached.
    """

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

    def read_range(
        self, key: str, start: int, end: int, chunk_size: int = 1 << 20
    ) -> Iterator[bytes]:
        """Yield bytes `start` … `end` (inclusive; fewer past the object's end). Raises
        `ObjectNotFound` before the first chunk."""
        ...

    def delete_prefix(self, prefix: str) -> None:
        """Remove every object whose key starts with `prefix` (missing is fine)."""
        ...

    def exists(self, key: str) -> bool: ...

    def objects(self, prefix: str) -> Iterator[StoredObject]:
        """Every object whose key starts with `prefix`, in no particular order."""
        ...

    def local_path(self, key: str) -> Path | None:
        """The object's file on this machine, if the backend keeps one (None for S3)."""
        ...

    def presigned_url(self, key: str, ttl_seconds: int, filename: str | None = None) -> str | None:
        """A URL that GETs the object without credentials for `ttl_seconds` (honouring
        `Range`, saved as `filename` when given), or None if the backend cannot sign one."""
        ...
