"""`LocalStorage.objects(prefix)`: every stored object whose key starts with the prefix (a
string prefix, not only a folder), never a write still in progress."""

from __future__ import annotations

from pathlib import Path

import pytest

from videoqueue.storage.local import TEMPORARY_PREFIX, LocalStorage


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    storage = LocalStorage(tmp_path / "media")
    for key in ("jobs/a1/output.mp4", "jobs/a1/inputs/x", "jobs/a2/output.mp4", "other/b"):
        storage.put_bytes(key, b"data")
    return storage


def test_keys_lists_every_key_under_a_prefix(storage: LocalStorage) -> None:
    assert sorted(o.key for o in storage.objects("")) == [
        "jobs/a1/inputs/x",
        "jobs/a1/output.mp4",
        "jobs/a2/output.mp4",
        "other/b",
    ]
    assert sorted(o.key for o in storage.objects("jobs/a1/")) == [
        "jobs/a1/inputs/x",
        "jobs/a1/output.mp4",
    ]


def test_a_prefix_need_not_end_at_a_folder(storage: LocalStorage) -> None:
    assert sorted(o.key for o in storage.objects("jobs/a")) == [
        "jobs/a1/inputs/x",
        "jobs/a1/output.mp4",
        "jobs/a2/output.mp4",
    ]
    assert list(o.key for o in storage.objects("jobs/a1/out")) == ["jobs/a1/output.mp4"]
    assert list(o.key for o in storage.objects("jobs/b")) == []
    assert list(o.key for o in storage.objects("missing/")) == []


def test_a_write_in_progress_is_no_key(storage: LocalStorage) -> None:
    (storage.root / "jobs" / "a2" / f"{TEMPORARY_PREFIX}half").write_bytes(b"da")
    assert list(o.key for o in storage.objects("jobs/a2/")) == ["jobs/a2/output.mp4"]


def test_a_prefix_may_not_escape_the_root(storage: LocalStorage) -> None:
    with pytest.raises(ValueError):
        list(o.key for o in storage.objects("../"))
