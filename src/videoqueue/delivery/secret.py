"""The server secret that signs delivery links: configured, or generated once per data dir."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path

SECRET_FILE = "link_secret"


class LinkSecretError(RuntimeError):
    """The link secret file exists but cannot be used."""


def _read(path: Path) -> bytes:
    secret = path.read_text(encoding="ascii").strip()
    if len(secret) < 32:
        raise LinkSecretError(
            f"{path} holds fewer than 32 characters; delete it to make a new "
            "one (links issued with the old secret stop working)"
        )
    return secret.encode("ascii")


def load_link_secret(configured: str | None, data_dir: Path) -> bytes:
    """The configured secret, else the one in `data_dir/link_secret`, created (mode 0600) if absent.

    Creation is atomic (written aside, then hard-linked into place), so API processes that
    start together on one data dir all end up with the same secret.
    """
    if configured:
        return configured.encode("utf-8")
    path = data_dir / SECRET_FILE
    if path.exists():
        return _read(path)
    data_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=data_dir, prefix=".link_secret-")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_hex(32) + "\n")
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
            os.link(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return _read(path)
