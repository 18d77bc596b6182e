"""What only the S3 backend does, against a real SeaweedFS: keys under the URL's prefix, signed
requests only, pre-signed URLs the server refuses once tampered with or expired, multipart
uploads, and our own errors when the server cannot be reached."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlparse

import httpx
import pytest

from tests.s3_server import S3Server
from tests.test_cli_serve import free_port
from videoqueue.storage.base import StorageUnavailable
from videoqueue.storage.factory import storage_from_url
from videoqueue.storage.s3 import MIB, S3Storage

DATA = b"videoqueue" * 1000


@pytest.fixture
def storage(s3_server: S3Server) -> S3Storage:
    made = storage_from_url(s3_server.url(), s3_server.config())
    assert isinstance(made, S3Storage)
    return made


def test_objects_live_under_the_urls_prefix_typed_by_their_name(
    storage: S3Storage, s3_server: S3Server
) -> None:
    storage.put_bytes("jobs/a/output.mp4", DATA)
    storage.put_bytes("jobs/a/inputs/abc", b"input")
    client = s3_server.client()
    listed = client.list_objects_v2(Bucket=s3_server.bucket, Prefix=storage.prefix)
    assert sorted(entry["Key"] for entry in listed["Contents"]) == [
        f"{storage.prefix}jobs/a/inputs/abc",
        f"{storage.prefix}jobs/a/output.mp4",
    ]
    head = client.head_object(Bucket=s3_server.bucket, Key=f"{storage.prefix}jobs/a/output.mp4")
    assert head["ContentType"] == "video/mp4"
    assert storage.local_path("jobs/a/output.mp4") is None


def test_the_server_refuses_unsigned_requests(storage: S3Storage, s3_server: S3Server) -> None:
    storage.put_bytes("jobs/a/output.mp4", DATA)
    plain = f"{s3_server.endpoint_url}/{s3_server.bucket}/{storage.prefix}jobs/a/output.mp4"
    assert httpx.get(plain).status_code == 403


def _tampered(url: str) -> list[str]:
    """The URL with its key, its expiry and its signature changed, one at a time."""
    signature = urlparse(url).query.rpartition("X-Amz-Signature=")[2]
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    return [
        url.replace("output.mp4", "output.mp5"),
        url.replace("X-Amz-Expires=60", "X-Amz-Expires=600"),
        url.replace(signature, flipped),
    ]


def test_a_tampered_presigned_url_is_refused(storage: S3Storage) -> None:
    storage.put_bytes("jobs/a/output.mp4", DATA)
    url = storage.presigned_url("jobs/a/output.mp4", 60)
    assert httpx.get(url).content == DATA
    for forged in _tampered(url):
        assert forged != url
        assert httpx.get(forged).status_code == 403, forged


def test_an_expired_presigned_url_is_refused(storage: S3Storage) -> None:
    storage.put_bytes("jobs/a/output.mp4", DATA)
    signed_at = datetime.now(UTC) - timedelta(minutes=5)
    # Signed five minutes ago for one minute: expired, yet its signature is genuine.
    with mock.patch("botocore.auth.get_current_datetime", return_value=signed_at):
        url = storage.presigned_url("jobs/a/output.mp4", 60)
    assert httpx.get(url).status_code == 403


def test_a_large_file_is_uploaded_in_parts(s3_server: S3Server, tmp_path: Path) -> None:
    storage = storage_from_url(s3_server.url(), s3_server.config(multipart_threshold_mb=5))
    assert isinstance(storage, S3Storage)
    source = tmp_path / "big.mp4"
    data = bytes(range(256)) * (9 * MIB // 256)
    source.write_bytes(data)
    assert storage.put_file("jobs/a/output.mp4", source) == len(data)
    head = s3_server.client().head_object(
        Bucket=s3_server.bucket, Key=f"{storage.prefix}jobs/a/output.mp4"
    )
    assert head["ETag"].strip('"').endswith("-2"), "a multipart upload's ETag counts its parts"
    boundary = 8 * MIB  # boto3's part size
    spanning = b"".join(storage.read_range("jobs/a/output.mp4", boundary - 10, boundary + 9))
    assert spanning == data[boundary - 10 : boundary + 10]
    storage.fetch_to("jobs/a/output.mp4", tmp_path / "copy.mp4")
    assert (tmp_path / "copy.mp4").read_bytes() == data


def _every_method(storage: S3Storage, tmp_path: Path) -> list[Callable[[], Any]]:
    source = tmp_path / "source"
    source.write_bytes(DATA)
    return [
        lambda: storage.put_bytes("jobs/a/output.mp4", DATA),
        lambda: storage.put_file("jobs/a/output.mp4", source),
        lambda: storage.fetch_to("jobs/a/output.mp4", tmp_path / "copy"),
        lambda: storage.size("jobs/a/output.mp4"),
        lambda: storage.read_range("jobs/a/output.mp4", 0, 10),
        lambda: storage.exists("jobs/a/output.mp4"),
        lambda: list(o.key for o in storage.objects("jobs/")),
        lambda: storage.delete_prefix("jobs/a/"),
    ]


def test_an_unreachable_server_is_storage_unavailable(s3_server: S3Server, tmp_path: Path) -> None:
    config = s3_server.config(endpoint_url=f"http://127.0.0.1:{free_port()}")
    storage = storage_from_url(s3_server.url(), config)
    assert isinstance(storage, S3Storage)
    for call in _every_method(storage, tmp_path):
        with pytest.raises(StorageUnavailable) as caught:
            call()
        assert caught.value.status == 503
        assert caught.value.headers()["Retry-After"]


def test_wrong_credentials_are_storage_unavailable(s3_server: S3Server, tmp_path: Path) -> None:
    config = s3_server.config(secret_access_key="not-the-secret")
    storage = storage_from_url(s3_server.url(), config)
    assert isinstance(storage, S3Storage)
    for call in _every_method(storage, tmp_path):
        with pytest.raises(StorageUnavailable):
            call()


def test_an_s3_url_names_its_bucket() -> None:
    with pytest.raises(ValueError, match="bucket"):
        storage_from_url("s3:///prefix")
