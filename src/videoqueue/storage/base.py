"""What every storage backend promises, and its one error."""

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


@dataclass(frozen=True)
class ShareLink:
    """A delivery link videoqueue issued for one stored object.

    `url` is where videoqueue itself serves it (`{public_base_url}/v1/share/read/<token>`),
    counting fetches and honouring revocation; `token` is the signed part of that URL.
    """

    token: str
    url: str
    expires_at: datetime


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

    def read_range(
        self, key: str, start: int, end: int, chunk_size: int = 1 << 20
    ) -> Iterator[bytes]:
        """Yield bytes `start` … `end` (inclusive). Raises `ObjectNotFound` before the first
        chunk."""
        ...

    def delete_prefix(self, prefix: str) -> None:
        """Remove every object whose key starts with `prefix` (missing is fine)."""
        ...

    def exists(self, key: str) -> bool: ...

    def local_path(self, key: str) -> Path | None:
        """The object's file on this machine, if the backend keeps one (None for S3)."""
        ...

    def delivery_url(self, key: str, link: ShareLink) -> str:
        """The pre-signed `download_url` a client GETs `key` from, without credentials.

        Returning `link.url` keeps videoqueue serving the object (through `read_range`) and
        so enforcing the fetch cap, the burst limit and `DELETE` revocation. A backend may
        instead return its own presigned GET URL valid no later than `link.expires_at`; such
        a URL can then only be revoked by deleting the object.
        """
        ...
