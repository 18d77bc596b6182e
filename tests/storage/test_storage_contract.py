"""The storage contract, run on every backend: a local folder and a real S3 server (SeaweedFS).

Each test takes `storage` and so runs once per backend.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.s3_server import S3Server
from videoqueue.storage.base import ObjectNotFound, Storage
from videoqueue.storage.factory import storage_from_url

DATA = bytes(range(256)) * 40 + b"tail"  # 10 244 bytes, every byte value, no two spans alike


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return storage_from_url((tmp_path / "media").as_uri())
    server: S3Server = request.getfixturevalue("s3_server")
    return storage_from_url(server.url(), server.config())


def _read(storage: Storage, key: str, start: int, end: int, chunk_size: int = 1 << 20) -> bytes:
    return b"".join(storage.read_range(key, start, end, chunk_size))


def test_put_bytes_stores_what_every_read_gives_back(storage: Storage, tmp_path: Path) -> None:
    assert storage.put_bytes("jobs/a/output.mp4", DATA) == len(DATA)
    assert storage.exists("jobs/a/output.mp4")
    assert storage.size("jobs/a/output.mp4") == len(DATA)
    assert _read(storage, "jobs/a/output.mp4", 0, len(DATA) - 1) == DATA
    copy = tmp_path / "copy.mp4"
    storage.fetch_to("jobs/a/output.mp4", copy)
    assert copy.read_bytes() == DATA


def test_put_file_stores_a_copy_of_the_file(storage: Storage, tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(DATA)
    assert storage.put_file("jobs/a/inputs/abc", source) == len(DATA)
    source.write_bytes(b"changed afterwards")
    assert _read(storage, "jobs/a/inputs/abc", 0, len(DATA) - 1) == DATA


def test_a_second_put_replaces_the_object_whole(storage: Storage) -> None:
    storage.put_bytes("jobs/a/output.mp4", DATA)
    assert storage.put_bytes("jobs/a/output.mp4", b"short") == 5
    assert storage.size("jobs/a/output.mp4") == 5
    assert _read(storage, "jobs/a/output.mp4", 0, 100) == b"short"


def test_a_failed_put_leaves_the_previous_object_and_no_other(
    storage: Storage, tmp_path: Path
) -> None:
    storage.put_bytes("jobs/a/output.mp4", DATA)
    with pytest.raises(FileNotFoundError):
        storage.put_file("jobs/a/output.mp4", tmp_path / "missing.mp4")
    with pytest.raises(FileNotFoundError):
        storage.put_file("jobs/a/other.mp4", tmp_path / "missing.mp4")
    assert _read(storage, "jobs/a/output.mp4", 0, len(DATA) - 1) == DATA
    assert set(o.key for o in storage.objects("jobs/")) == {"jobs/a/output.mp4"}, (
        "no temporary or partial object"
    )


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, 0, DATA[:1]),
        (len(DATA) - 1, len(DATA) - 1, DATA[-1:]),
        (1000, 4999, DATA[1000:5000]),
        (10_000, 10**9, DATA[10_000:]),
        (len(DATA), len(DATA) + 10, b""),
        (5, 4, b""),
    ],
    ids=["first-byte", "last-byte", "middle", "past-the-end", "starts-after-the-end", "empty"],
)
def test_read_range_yields_the_inclusive_span(
    storage: Storage, start: int, end: int, expected: bytes
) -> None:
    storage.put_bytes("jobs/a/output.mp4", DATA)
    assert _read(storage, "jobs/a/output.mp4", start, end) == expected


def test_read_range_streams_in_chunks_no_larger_than_asked(storage: Storage) -> None:
    storage.put_bytes("jobs/a/output.mp4", DATA)
    chunks = list(storage.read_range("jobs/a/output.mp4", 3, 3 + 4000, chunk_size=1000))
    assert b"".join(chunks) == DATA[3:4004]
    assert len(chunks) >= 5 and all(0 < len(chunk) <= 1000 for chunk in chunks)


def test_an_empty_object_reads_as_no_bytes(storage: Storage, tmp_path: Path) -> None:
    assert storage.put_bytes("jobs/a/empty", b"") == 0
    assert storage.size("jobs/a/empty") == 0
    assert _read(storage, "jobs/a/empty", 0, -1) == b""
    storage.fetch_to("jobs/a/empty", tmp_path / "empty")
    assert (tmp_path / "empty").read_bytes() == b""


def test_a_missing_key_is_object_not_found_everywhere(storage: Storage, tmp_path: Path) -> None:
    storage.put_bytes("jobs/a/output.mp4", DATA)
    assert not storage.exists("jobs/a/missing.mp4")
    with pytest.raises(ObjectNotFound):
        storage.size("jobs/a/missing.mp4")
    with pytest.raises(ObjectNotFound):
        storage.read_range("jobs/a/missing.mp4", 0, 10)  # raised on the call, before any chunk
    with pytest.raises(ObjectNotFound):
        storage.read_range("jobs/a/missing.mp4", 1, 0)
    destination = tmp_path / "copy.mp4"
    with pytest.raises(ObjectNotFound):
        storage.fetch_to("jobs/a/missing.mp4", destination)
    assert not destination.exists()


def test_a_local_path_when_given_is_the_objects_file(storage: Storage) -> None:
    storage.put_bytes("jobs/a/output.mp4", DATA)
    path = storage.local_path("jobs/a/output.mp4")
    assert path is None or path.read_bytes() == DATA


def test_a_presigned_url_when_given_serves_the_object_and_its_ranges(storage: Storage) -> None:
    storage.put_bytes("jobs/a/output.mp4", DATA)
    url = storage.presigned_url("jobs/a/output.mp4", 60, filename="a.mp4")
    if url is None:
        return
    whole = httpx.get(url)
    assert whole.status_code == 200 and whole.content == DATA
    assert whole.headers["content-disposition"] == 'attachment; filename="a.mp4"'
    part = httpx.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == DATA[100:200]


def test_a_listing_gives_each_object_its_size_and_when_it_was_written(storage: Storage) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)  # S3 keeps whole seconds
    storage.put_bytes("jobs/a/output.mp4", DATA)
    storage.put_bytes("jobs/a/inputs/x", b"x")
    after = datetime.now(UTC) + timedelta(seconds=5)
    listed = {o.key: o for o in storage.objects("jobs/")}
    assert {key: o.size for key, o in listed.items()} == {
        "jobs/a/output.mp4": len(DATA),
        "jobs/a/inputs/x": 1,
    }
    assert all(before <= o.modified_at <= after for o in listed.values())


def test_objects_lists_every_key_that_starts_with_the_prefix(storage: Storage) -> None:
    for key in ("jobs/a/output.mp4", "jobs/a/inputs/x", "jobs/ab/output.mp4", "jobs/b/output.mp4"):
        storage.put_bytes(key, key.encode())
    assert set(o.key for o in storage.objects("jobs/a/")) == {
        "jobs/a/output.mp4",
        "jobs/a/inputs/x",
    }
    assert set(o.key for o in storage.objects("jobs/a")) == {
        "jobs/a/output.mp4",
        "jobs/a/inputs/x",
        "jobs/ab/output.mp4",
    }
    assert len(set(o.key for o in storage.objects(""))) == 4
    assert list(o.key for o in storage.objects("jobs/c/")) == []
    assert list(o.key for o in storage.objects("nothing/here/")) == []


def test_delete_prefix_removes_the_job_and_nothing_else(storage: Storage) -> None:
    for key in ("jobs/a/output.mp4", "jobs/a/inputs/x", "jobs/ab/output.mp4", "jobs/b/output.mp4"):
        storage.put_bytes(key, key.encode())
    storage.delete_prefix("jobs/a/")
    assert not storage.exists("jobs/a/output.mp4")
    assert not storage.exists("jobs/a/inputs/x")
    assert set(o.key for o in storage.objects("jobs/")) == {
        "jobs/ab/output.mp4",
        "jobs/b/output.mp4",
    }
    storage.delete_prefix("jobs/a/")  # again, and a prefix that never held anything
    storage.delete_prefix("jobs/never/")
    assert set(o.key for o in storage.objects("jobs/")) == {
        "jobs/ab/output.mp4",
        "jobs/b/output.mp4",
    }
