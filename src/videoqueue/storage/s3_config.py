"""How to reach an S3 server: kept apart from `s3.py` so that only an `s3://` URL imports boto3."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class S3Config:
    """Endpoint, credentials and transfer sizes; None leaves a value to boto3's usual sources
    (`AWS_*` variables, `~/.aws/config`, an instance role)."""

    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    addressing_style: Literal["auto", "path", "virtual"] = "auto"
    multipart_threshold_mb: int = 64
    timeout_seconds: float = 10.0
    max_attempts: int = 3
