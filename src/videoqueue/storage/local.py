"""Storage in a local directory: each key is a file below the root."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from videoqueue.storage.base import ObjectNotFound, StoredObject

TEMPORARY_PREFIX = ".tmp-"


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._inside = os.path.join(self.root, "")

    def _path(self, key: str) -> Path:
        # Lexical, not `resolve()`: it runs on every download, and resolving walks the path
        # with a system call per part. The folder holds only what this class writes, so no
        # link inside it leads out.
        path = os.path.normpath(os.path.join(self.root, key))
        if not path.startswith(self._inside):
            raise ValueError(f"storage key escapes the root: {key!r}")
        return Path(path)

    def _write_atomically(self, key: str, write: Callable[[BinaryIO], object]) -> int:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f"{TEMPORARY_PREFIX}{secrets.token_hex(8)}"
        # 0644 less the umask, as for any file written here (mkstemp's would be 0600): a proxy
        # sending the media (`file_offload`) reads them as its own user.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "wb") as out:
                write(out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return path.stat().st_size

    def put_file(self, key: str, source: Path) -> int:
        def write(out: BinaryIO) -> None:
            with source.open("rb") as src:
                shutil.copyfileobj(src, out)

        return self._write_atomically(key, write)

    def put_bytes(self, key: str, data: bytes) -> int:
        return self._write_atomically(key, lambda out: out.write(data))

    def fetch_to(self, key: str, destination: Path) -> None:
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFound()
        shutil.copyfile(path, destination)

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise ObjectNotFound() from None

    def read_range(
        self, key: str, start: int, end: int, chunk_size: int = 1 << 20
    ) -> Iterator[bytes]:
        try:
            f = self._path(key).open("rb")
        except FileNotFoundError:
            raise ObjectNotFound() from None
        return self._chunks(f, start, end, chunk_size)

    @staticmethod
    def _chunks(f: BinaryIO, start: int, end: int, chunk_size: int) -> Iterator[bytes]:
        with f:
            f.seek(start)
            remaining = end - start + 1
            while remaining > 0:
                chunk = f.read(min(chunk_size, remaining))
                if not chunk:
                    return
                remaining -= len(chunk)
                yield chunk

    def delete_prefix(self, prefix: str) -> None:
        target = self._path(prefix.rstrip("/"))
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def objects(self, prefix: str) -> Iterator[StoredObject]:
        # Only the folder the prefix names up to its last "/" can hold matches.
        folder = self.root / prefix.rpartition("/")[0]
        if not folder.resolve().is_relative_to(self.root):
            raise ValueError(f"storage prefix escapes the root: {prefix!r}")
        for parent, _, names in os.walk(folder):
            for name in names:
                if name.startswith(TEMPORARY_PREFIX):  # a write in progress, not an object
                    continue
                path = Path(parent) / name
                key = path.relative_to(self.root).as_posix()
                if not key.startswith(prefix):
                    continue
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    continue  # deleted since the folder was read
                modified_at = datetime.fromtimestamp(stat.st_mtime, UTC)
                yield StoredObject(key, stat.st_size, modified_at)

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFound()
        return path

    def presigned_url(self, key: str, ttl_seconds: int, filename: str | None = None) -> str | None:
        # A directory cannot presign: videoqueue serves the file at its own share route.
        return None
