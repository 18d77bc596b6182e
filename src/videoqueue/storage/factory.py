"""Choose a storage backend from its URL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from videoqueue.storage.base import Storage
from videoqueue.storage.local import LocalStorage
from videoqueue.storage.s3_config import S3Config


def storage_from_url(url: str, s3: S3Config | None = None) -> Storage:
    """`file:///abs/path` → `LocalStorage`; `s3://bucket/prefix` → `S3Storage` reached as
    `s3` says (boto3 is imported only then)."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return LocalStorage(Path(unquote(parsed.path)))
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"an s3:// storage URL names its bucket: {url!r}")
        try:
            from videoqueue.storage.s3 import S3Storage
        except ModuleNotFoundError as missing:
            raise ValueError(
                f"s3:// storage needs boto3 ({missing}): pip install 'videoqueue[s3]'"
            ) from missing
        return S3Storage(parsed.netloc, unquote(parsed.path), s3 or S3Config())
    raise ValueError(f"unsupported storage URL scheme: {parsed.scheme!r}")
