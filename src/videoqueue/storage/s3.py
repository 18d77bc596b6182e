"""Storage in an S3 bucket (AWS S3, SeaweedFS, MinIO …) through boto3.

Every key lives under the URL's prefix (`s3://bucket/prefix` → `prefix/jobs/…`). An S3 PUT
replaces an object whole, so writes are atomic without a temporary name. botocore's errors
never leave this module: a missing key is `ObjectNotFound`, anything else `StorageUnavailable`.
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from videoqueue.storage.base import ObjectNotFound, StorageUnavailable, StoredObject
from videoqueue.storage.s3_config import S3Config

if TYPE_CHECKING:
    from botocore.response import StreamingBody
    from mypy_boto3_s3.client import S3Client

log = logging.getLogger(__name__)

MIB = 1 << 20
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_DELETE_BATCH = 1000  # the most keys one DeleteObjects call takes


class S3Storage:
    def __init__(self, bucket: str, prefix: str, config: S3Config) -> None:
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self._client: S3Client = boto3.session.Session().client(
            "s3",
            endpoint_url=config.endpoint_url,
            region_name=config.region,
            aws_access_key_id=config.access_key_id,
            aws_secret_access_key=config.secret_access_key,
            config=Config(
                signature_version="s3v4",  # boto3 would presign with the retired SigV2
                s3={"addressing_style": config.addressing_style},
                connect_timeout=config.timeout_seconds,
                read_timeout=config.timeout_seconds,
                retries={"mode": "standard", "max_attempts": config.max_attempts},
            ),
        )
        self._transfer = TransferConfig(multipart_threshold=config.multipart_threshold_mb * MIB)

    def _key(self, key: str) -> str:
        return self.prefix + key

    @contextmanager
    def _boundary(self, action: str, key: str) -> Iterator[None]:
        """Turn what boto3 raises while doing `action` on `key` into our errors."""
        try:
            yield
        except ClientError as exc:
            if _code(exc) in _MISSING_CODES:
                raise ObjectNotFound() from None
            log.warning("S3 %s of %s/%s failed: %s", action, self.bucket, self._key(key), exc)
            raise StorageUnavailable() from exc
        except (BotoCoreError, Boto3Error) as exc:
            log.warning("S3 %s of %s/%s failed: %s", action, self.bucket, self._key(key), exc)
            raise StorageUnavailable() from exc

    def put_file(self, key: str, source: Path) -> int:
        size = source.stat().st_size
        with self._boundary("upload", key):
            self._client.upload_file(
                str(source),
                self.bucket,
                self._key(key),
                ExtraArgs={"ContentType": _content_type(key)},
                Config=self._transfer,
            )
        return size

    def put_bytes(self, key: str, data: bytes) -> int:
        with self._boundary("upload", key):
            self._client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=_content_type(key)
            )
        return len(data)

    def fetch_to(self, key: str, destination: Path) -> None:
        # s3transfer writes a temporary file beside `destination` and renames it when done.
        with self._boundary("download", key):
            self._client.download_file(
                self.bucket, self._key(key), str(destination), Config=self._transfer
            )

    def size(self, key: str) -> int:
        with self._boundary("HEAD", key):
            return self._client.head_object(Bucket=self.bucket, Key=self._key(key))["ContentLength"]

    def read_range(
        self, key: str, start: int, end: int, chunk_size: int = 1 << 20
    ) -> Iterator[bytes]:
        if end < start:  # S3 cannot ask for no bytes; an empty range still needs the object
            self.size(key)
            return iter(())
        with self._boundary("read", key):
            try:
                body = self._client.get_object(
                    Bucket=self.bucket, Key=self._key(key), Range=f"bytes={start}-{end}"
                )["Body"]
            except ClientError as exc:
                if _code(exc) != "InvalidRange":
                    raise
                return iter(())  # `start` lies past the end
        return self._chunks(key, body, chunk_size)

    def _chunks(self, key: str, body: StreamingBody, chunk_size: int) -> Iterator[bytes]:
        try:
            with self._boundary("read", key):
                yield from body.iter_chunks(chunk_size)
        finally:
            body.close()

    def delete_prefix(self, prefix: str) -> None:
        batch: list[str] = []
        for stored in self.objects(prefix):
            batch.append(stored.key)
            if len(batch) == _DELETE_BATCH:
                self._delete(batch)
                batch = []
        if batch:
            self._delete(batch)

    def _delete(self, keys: list[str]) -> None:
        with self._boundary("delete", keys[0]):
            answer = self._client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": self._key(k)} for k in keys], "Quiet": True},
            )
        if errors := answer.get("Errors"):
            log.warning("S3 delete of %d keys in %s failed: %s", len(errors), self.bucket, errors)
            raise StorageUnavailable()

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except ObjectNotFound:
            return False
        return True

    def objects(self, prefix: str) -> Iterator[StoredObject]:
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._key(prefix)
        )
        with self._boundary("listing", prefix):
            for page in pages:
                for entry in page.get("Contents", []):
                    key = entry["Key"].removeprefix(self.prefix)
                    yield StoredObject(key, entry["Size"], entry["LastModified"])

    def local_path(self, key: str) -> Path | None:
        return None

    def presigned_url(self, key: str, ttl_seconds: int, filename: str | None = None) -> str:
        params = {"Bucket": self.bucket, "Key": self._key(key)}
        if filename is not None:
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        with self._boundary("signing", key):
            return self._client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=ttl_seconds
            )


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _content_type(key: str) -> str:
    """What a client GETting the object directly (a pre-signed URL) is told it holds."""
    return mimetypes.guess_type(key)[0] or "application/octet-stream"
