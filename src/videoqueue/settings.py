"""The one settings object, read from `VIDEOQUEUE_*` variables and an optional TOML file."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("videoqueue-data")


class Settings(BaseSettings):
    """Everything an operator can set. Built once at start-up and passed down explicitly."""

    model_config = SettingsConfigDict(env_prefix="VIDEOQUEUE_", extra="forbid")

    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file in data_dir"
    )
    storage_url: str | None = Field(
        default=None, description="file:///path or s3://bucket/prefix; default: data_dir/media"
    )
    host: str = "127.0.0.1"
    port: int = 8000
    public_base_url: str | None = Field(
        default=None, description="Base URL clients reach; default: http://host:port"
    )
    catalog_path: Path | None = Field(
        default=None, description="Operator catalogue TOML that adds or overrides models"
    )
    workers: int = 1
    lease_seconds: float = 30.0
    heartbeat_seconds: float = 5.0
    poll_seconds: float = 0.5
    max_attempts: int = 3
    default_average_execution_ms: int = 60_000
    max_body_bytes: int = 35 * 1024 * 1024

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'videoqueue.db').resolve()}"

    @property
    def resolved_storage_url(self) -> str:
        return self.storage_url or (self.data_dir / "media").resolve().as_uri()

    @property
    def resolved_public_base_url(self) -> str:
        return (self.public_base_url or f"http://{self.host}:{self.port}").rstrip("/")

    @classmethod
    def load(cls, config_file: Path | None = None, **overrides: Any) -> Settings:
        """Settings from explicit overrides, else the TOML file (if given), else the environment."""
        values: dict[str, Any] = {}
        if config_file is not None:
            with config_file.open("rb") as f:
                values.update(tomllib.load(f))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
