"""What only the local backend does: the object's own file, no pre-signed URLs, keys that
cannot leave the root, and no boto3 import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from videoqueue.storage.base import ObjectNotFound
from videoqueue.storage.local import LocalStorage


def test_local_path_is_the_file_below_the_root(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "media")
    storage.put_bytes("jobs/a/output.mp4", b"video")
    assert storage.local_path("jobs/a/output.mp4") == tmp_path / "media/jobs/a/output.mp4"
    with pytest.raises(ObjectNotFound):
        storage.local_path("jobs/a/missing.mp4")


def test_a_folder_signs_no_urls(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "media")
    storage.put_bytes("jobs/a/output.mp4", b"video")
    assert storage.presigned_url("jobs/a/output.mp4", 60) is None


@pytest.mark.parametrize("key", ["../outside", "jobs/../../outside", "/etc/passwd"])
def test_keys_cannot_escape_the_root(tmp_path: Path, key: str) -> None:
    storage = LocalStorage(tmp_path / "media")
    with pytest.raises(ValueError, match="escapes"):
        storage.put_bytes(key, b"x")
    with pytest.raises(ValueError, match="escapes"):
        list(o.key for o in storage.objects(key))
    assert not (tmp_path / "outside").exists()


def test_a_local_folder_imports_no_boto3(tmp_path: Path) -> None:
    check = (
        "import sys; from videoqueue.storage.factory import storage_from_url; "
        f"storage_from_url({(tmp_path / 'media').as_uri()!r}).put_bytes('k', b'x'); "
        "print('boto3' in sys.modules, 'botocore' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["False", "False"]
