"""Choose a storage backend from its URL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from videoqueue.storage.base import Storage
from videoqueue.storage.local import LocalStorage


def storage_from_url(url: str) -> Storage:
    """`file:///abs/path` → `LocalStorage`. (S3 arrives with its own backend.)"""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return LocalStorage(Path(unquote(parsed.path)))
    raise ValueError(f"unsupported storage URL scheme: {parsed.scheme!r}")
