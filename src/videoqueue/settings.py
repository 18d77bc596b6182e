"""The one settings object, read from `VIDEOQUEUE_*` variables and an optional TOML file."""

from __future__ import annotations

import os
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, IPvAnyNetwork, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from videoqueue.catalog.content_policy import ContentRule
from videoqueue.storage.s3_config import S3Config

DEFAULT_DATA_DIR = Path("videoqueue-data")


class Settings(BaseSettings):
    """Everything an operator can set. Built once at start-up and passed down explicitly."""

    model_config = SettingsConfigDict(env_prefix="VIDEOQUEUE_", extra="forbid")

    data_dir: Path = Field(
        default=DEFAULT_DATA_DIR,
        description="Where the SQLite database, media and link secret live",
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file in data_dir"
    )
    storage_url: str | None = Field(
        default=None,
        description="file:///path (local directory) or s3://bucket/prefix (docs/storage.md); "
        "default: data_dir/media",
    )
    # S3 storage (docs/storage.md). Unset values come from boto3's usual sources.
    s3_endpoint_url: str | None = Field(
        default=None,
        description="S3 server to use instead of AWS (SeaweedFS, MinIO: `http://host:8333`)",
    )
    s3_region: str | None = Field(
        default=None, description="S3 region; default: AWS_REGION or ~/.aws/config"
    )
    s3_access_key_id: str | None = Field(
        default=None, description="S3 access key; default: AWS_ACCESS_KEY_ID, ~/.aws, a role"
    )
    s3_secret_access_key: str | None = Field(
        default=None,
        repr=False,
        description="S3 secret key; default: AWS_SECRET_ACCESS_KEY, ~/.aws, a role",
    )
    s3_addressing_style: Literal["auto", "path", "virtual"] = Field(
        default="auto",
        description="`path` (`endpoint/bucket/key`, for most self-hosted servers) or "
        "`virtual` (`bucket.endpoint/key`); `auto` lets boto3 choose",
    )
    s3_multipart_threshold_mb: int = Field(
        default=64,
        ge=5,
        description="Outputs larger than this many MiB are uploaded to S3 in parts",
    )
    s3_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Longest wait to connect to S3, and for each read"
    )
    s3_max_attempts: int = Field(
        default=3,
        ge=1,
        description="Tries of one S3 request (after a connection error, 5xx or throttling) "
        "before answering 503",
    )
    storage_redirect: bool = Field(
        default=False,
        description="A download link (or an input link) answers 307 to a short-lived "
        "pre-signed storage URL instead of streaming the file through videoqueue (S3 only; "
        "/video/retrieve always streams)",
    )
    storage_redirect_seconds: int = Field(
        default=60, ge=1, description="How long the pre-signed URL of a redirect is valid"
    )
    host: str = Field(default="127.0.0.1", description="Address `serve` listens on")
    port: int = Field(default=8000, description="Port `serve` listens on")
    public_base_url: str | None = Field(
        default=None,
        description="Base URL clients (and upstreams fetching input links) reach; default: "
        "http://host:port",
    )
    catalog_path: Path | None = Field(
        default=None, description="Operator catalogue TOML that adds or overrides models"
    )
    workers: int = Field(
        default=1,
        ge=0,
        description="Worker processes `serve` supervises (0: the API only, with workers "
        "started by `videoqueue worker`, one per GPU)",
    )
    worker_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="CPU priority of worker processes and their engines' children, as `nice` "
        "counts it (0: the API's; 19: the lowest): where they share cores with the API, a "
        "busy engine takes only the CPU the API leaves, so queue requests and polls stay fast; "
        "alone on the machine they still use every core",
    )
    api_processes: int | None = Field(
        default=None,
        ge=1,
        description="API processes `serve` runs on its port (uvicorn workers sharing the "
        "database and link secret); default: one per CPU core its workers leave, at least one",
    )
    api_cpu_pinning: bool = Field(
        default=True,
        description="Keep each API process on a CPU core no other API process on this host "
        "has claimed (Linux): its event loop and threads then share one core's caches, which "
        "cuts the CPU a request costs by about a third; turn off where deployments in separate "
        "containers share a host's cores without cpusets",
    )
    api_database_threads: int = Field(
        default=4,
        ge=1,
        description="Threads of each API process that run requests' database work (queue "
        "requests that fetch nothing, polls), which requests wait for in arrival order; a "
        "few keep the thread holding a lock from queueing for the GIL behind many others",
    )
    engines: dict[str, str] = Field(
        default_factory=dict,
        description="Extra engines by name, each `module:Factory` importable by workers "
        '(JSON in the environment: `{"mine": "my_pkg.engine:MyEngine"}`); a catalogue '
        "entry's `engine` names one",
    )
    lease_seconds: float = Field(
        default=30.0, gt=0, description="How long a job stays a worker's without a heartbeat"
    )
    heartbeat_seconds: float = Field(
        default=5.0, gt=0, description="How often a working worker renews its lease"
    )
    poll_seconds: float = Field(
        default=0.5,
        gt=0,
        description="How often an idle worker looks for jobs; a queued job also wakes it "
        "(LISTEN/NOTIFY on PostgreSQL, a datagram to its socket in `<database>-wake/` on SQLite)",
    )
    shutdown_grace_seconds: float = Field(
        default=15.0,
        ge=0,
        description="On SIGTERM or Ctrl-C, how long a worker lets its running job finish "
        "before handing it back to the queue (the attempt not counted)",
    )
    api_shutdown_grace_seconds: int = Field(
        default=30,
        ge=0,
        description="On SIGTERM or Ctrl-C, how long the API lets requests in flight finish "
        "before it closes their connections (uvicorn's graceful shutdown timeout)",
    )
    worker_heartbeat_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How often each worker writes its row in the `workers` table (its "
        "engines' setup states, its current job), idle or not",
    )
    worker_lost_after_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A worker whose last heartbeat is older than this is `lost` (`videoqueue "
        "workers`, `GET /workers`), and its engines keep no model online in `/models`",
    )
    worker_forget_after_seconds: float = Field(
        default=86_400.0,
        gt=0,
        description="How long a lost worker stays listed before the next worker that starts "
        "deletes its row",
    )
    engine_setup_timeout_seconds: float = Field(
        default=600.0,
        gt=0,
        description="How long a worker waits for an engine to load (its weights, say) before "
        "counting its setup failed",
    )
    engine_setup_retry_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often a worker tries again to set up an engine that failed; until "
        "then it claims none of that engine's jobs",
    )
    cancel_grace_seconds: float = Field(
        default=10.0,
        ge=0,
        description="How long an engine may carry on with a cancelled job before its process "
        "is killed and replaced",
    )
    max_attempts: int = Field(
        default=3,
        ge=1,
        description="Attempts a job gets when its worker dies; then it fails and is refunded",
    )
    default_average_execution_ms: int = Field(
        default=60_000,
        ge=0,
        description="`average_execution_time` before a model has any finished job",
    )
    retention_hours: float | None = Field(
        default=None,
        gt=0,
        description="How long the media (output and inputs) of a completed, failed or "
        "cancelled job is kept; then a worker deletes it and the job is EXPIRED (retrieve "
        "answers 404). Default: kept until the client deletes it",
    )
    max_body_bytes: int = Field(
        default=35 * 1024 * 1024, gt=0, description="Largest request body; more is refused with 413"
    )
    # Media intake (docs/media.md): where http(s) media URLs may be fetched from, and how.
    media_allow_private_networks: bool = Field(
        default=False,
        description="Also fetch media from loopback and private (RFC 1918/4193, "
        "shared) addresses; link-local, multicast and reserved stay refused",
    )
    media_allowed_networks: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="CIDR ranges media may always be fetched from "
        "(e.g. an internal CDN), whatever range they lie in",
    )
    media_fetch_connect_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Longest wait to connect to a media URL's host"
    )
    media_fetch_read_timeout_seconds: float = Field(
        default=15.0, gt=0, description="Longest wait for the next bytes of a media URL"
    )
    media_fetch_total_timeout_seconds: float = Field(
        default=60.0, gt=0, description="Longest time one media URL may take to fetch"
    )
    media_fetch_max_redirects: int = Field(
        default=3, ge=0, description="Redirects a media URL may take (each one re-checked)"
    )
    media_max_video_bytes: int = Field(
        default=256 * 1024 * 1024,
        gt=0,
        description="Largest video_url file (reference videos have the model family's own cap)",
    )
    # Webhooks (docs/webhooks.md): sent only where media may be fetched from (the settings above).
    webhook_timeout_seconds: float = Field(
        default=15.0,
        gt=0,
        description="Longest wait for a webhook URL to connect, take the body and answer",
    )
    webhook_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long a worker holds a delivery it sends; if the worker dies, "
        "another sends it once this has passed (keep it above the timeout)",
    )
    webhook_retry_delays_seconds: list[float] = Field(
        # Standard Webhooks' schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h), then a last try
        # 6 h later, so a receiver gets about 24 h (23.6 h) to come back.
        default_factory=lambda: [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 21600.0],
        description="Pauses before each retry of a delivery that got no 2xx answer; after "
        "the last one it is given up (default: Standard Webhooks' schedule with a last pause "
        "of 6 h, about 24 h in all)",
    )
    webhook_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How often a worker looks for deliveries due (a job it ends wakes it too)",
    )
    content_policy_rules: list[ContentRule] = Field(
        default_factory=list, description="Prompt rules answered with 422 before any charge"
    )
    # Observability (docs/observability.md).
    events_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How often an open `/video/events` stream looks at its job (one short "
        "read each time, no connection held between)",
    )
    metrics_access: Literal["loopback", "admin", "open"] = Field(
        default="loopback",
        description="Who may read `/metrics`: `loopback` (clients on 127.0.0.1 or ::1 "
        "without a key, others with an admin key), `admin` (an admin key always), `open`",
    )
    log_format: Literal["auto", "text", "json"] = Field(
        default="auto",
        description="How the API and worker processes log: `text`, or `json` (one object a "
        "line: time, level, logger, pid, message, request_id, job_id); `auto`: text when "
        "stderr is a terminal, else JSON",
    )
    playground: bool = Field(
        default=True,
        description="Serve the playground page at `/` (and its files under `/playground/`); "
        "off, both answer 404 (docs/playground.md)",
    )
    # Request limits per API key and model (spec §3.3), shared by every API process.
    queue_requests_per_minute: int = Field(
        default=40, ge=1, description="`/video/queue` requests per minute"
    )
    retrieve_requests_per_minute: int = Field(
        default=120, ge=1, description="`/video/retrieve` (and `/video/complete`) per minute"
    )
    failed_requests_budget: int = Field(
        default=50, ge=1, description="Failed (4xx but 429) requests allowed per window"
    )
    failed_requests_window_seconds: int = Field(
        default=30, ge=1, description="Window of the failed-request budget"
    )
    # Request limits per client IP on the wallet routes (spec §2.5, §2.6).
    x402_top_up_requests_per_minute: int = Field(
        default=10, ge=1, description="`POST /x402/top-up` requests per minute per client IP"
    )
    x402_balance_requests_per_minute: int = Field(
        default=30, ge=1, description="`GET /x402/balance/{wallet}` per minute per client IP"
    )
    x402_transactions_requests_per_minute: int = Field(
        default=20, ge=1, description="`GET /x402/transactions/{wallet}` per minute per client IP"
    )
    idempotency_ttl_seconds: float = Field(
        default=86_400.0, gt=0, description="How long an `Idempotency-Key` answer is replayed"
    )
    # Private models' download links (`download_url`, spec §8).
    link_secret: str | None = Field(
        default=None,
        repr=False,
        min_length=32,
        description="HMAC key that signs download links and input links; default: generated "
        "once and kept in data_dir/link_secret (give every API and worker process the same one)",
    )
    download_link_ttl_seconds: float = Field(
        default=86_400.0, gt=0, description="How long a download link stays valid"
    )
    download_link_max_fetches: int = Field(
        default=5, ge=1, description="GETs that serve the video before a link answers 410"
    )
    download_link_burst: int = Field(
        default=3, ge=1, description="GETs of one link allowed per burst window; more get 429"
    )
    download_link_burst_seconds: float = Field(
        default=10.0, gt=0, description="Length of a download link's burst window"
    )
    download_link_delete_media: bool = Field(
        default=True, description="DELETE on a download link also deletes the stored video"
    )
    # Who sends a finished MP4's bytes from the local media dir (docs/downloads.md).
    file_offload: Literal["none", "x-accel-redirect", "x-sendfile"] = Field(
        default="none",
        description="Who sends a finished MP4 kept in a local media dir: `none`, videoqueue; "
        "`x-accel-redirect` (nginx) or `x-sendfile` (Apache, lighttpd), the reverse proxy, "
        "told by that header on an empty answer once every check has passed (it then "
        "honours Range itself)",
    )
    file_offload_prefix: str = Field(
        default="/_videoqueue/media/",
        pattern=r"^/(.*/)?$",
        description="With x-accel-redirect: the nginx `internal` location serving the media "
        "dir; the header is this prefix followed by the object's key",
    )
    # Wallets: Sign-In-With-X and x402 top-ups (docs/wallets.md).
    siwx_domains: list[str] = Field(
        default_factory=list,
        description="Domains a SIGN-IN-WITH-X message may name (scheme, "
        "port and path ignored); default: the host of public_base_url",
    )
    siwx_evm_chain_ids: list[int] = Field(
        default_factory=lambda: [8453], description="EVM chains wallets may sign in on (Base)"
    )
    wallet_minimum_balance_usd: float = Field(
        default=0.10, ge=0, description="Credit a wallet needs to use inference routes"
    )
    wallet_max_concurrent_requests: int = Field(
        default=5, ge=1, description="Requests one wallet may have in flight; more get 429"
    )
    wallet_request_slot_seconds: float = Field(
        default=600.0, gt=0, description="When a request slot of a crashed API process is freed"
    )
    x402_facilitator_url: str | None = Field(
        default=None,
        description="x402 facilitator that verifies and settles top-ups on chain; "
        "default: the local facilitator, which checks signatures but moves no funds",
    )
    x402_facilitator_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Longest wait for the facilitator to verify or settle"
    )
    x402_pay_to: str | None = Field(
        default=None, description="EVM address top-ups are paid to; top-ups are off until set"
    )
    x402_network: str = Field(default="eip155:8453", description="CAIP-2 network of x402_asset")
    x402_asset: str = Field(
        default="0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
        description="USDC contract (EIP-3009) top-ups are paid in",
    )
    x402_asset_name: str = Field(default="USD Coin", description="Its EIP-712 domain name")
    x402_asset_version: str = Field(default="2", description="Its EIP-712 domain version")
    x402_solana_pay_to: str | None = Field(
        default=None, description="Solana USDC receiver (needs x402_facilitator_url)"
    )
    x402_solana_fee_payer: str | None = Field(
        default=None, description="Solana account that pays the fee of Solana top-ups"
    )
    x402_minimum_top_up_usd: float = Field(
        default=5.0, gt=0, description="Smallest top-up accepted"
    )
    x402_suggested_top_up_usd: float = Field(
        default=10.0, gt=0, description="Top-up the 402 answers suggest and price their rails at"
    )
    x402_maximum_top_up_usd: float = Field(
        default=10_000.0, gt=0, description="Largest top-up accepted"
    )

    @field_validator("engines")
    @classmethod
    def _factories(cls, value: dict[str, str]) -> dict[str, str]:
        for name, factory in value.items():
            module, _, attribute = factory.partition(":")
            if not module or not attribute:
                raise ValueError(f"engine {name!r}: {factory!r} is not `module:Factory`")
        return value

    @model_validator(mode="after")
    def _heartbeats_before_lost(self) -> Settings:
        if self.worker_lost_after_seconds <= self.worker_heartbeat_seconds:
            raise ValueError(
                "worker_lost_after_seconds must be longer than worker_heartbeat_seconds, "
                "or live workers are counted lost between two heartbeats"
            )
        return self

    @property
    def resolved_api_processes(self) -> int:
        # An API process on a core a busy worker also needs only takes turns with it: on two
        # cores and one worker, one API process answered more queue requests than two.
        cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        count = len(cores) if cores else os.cpu_count() or 1
        return self.api_processes or max(1, count - self.workers)

    @property
    def retention(self) -> timedelta | None:
        return None if self.retention_hours is None else timedelta(hours=self.retention_hours)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'videoqueue.db').resolve()}"

    @property
    def resolved_storage_url(self) -> str:
        return self.storage_url or (self.data_dir / "media").resolve().as_uri()

    def s3_config(self) -> S3Config:
        """How an `s3://` storage URL's bucket is reached."""
        return S3Config(
            endpoint_url=self.s3_endpoint_url,
            region=self.s3_region,
            access_key_id=self.s3_access_key_id,
            secret_access_key=self.s3_secret_access_key,
            addressing_style=self.s3_addressing_style,
            multipart_threshold_mb=self.s3_multipart_threshold_mb,
            timeout_seconds=self.s3_timeout_seconds,
            max_attempts=self.s3_max_attempts,
        )

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


def settings_markdown() -> str:
    """Every setting as a Markdown table: its environment variable, default and meaning."""
    rows = ["| environment variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown = "(unset)" if default is None or default == [] else f"`{default}`"
        meaning = (field.description or "").replace("|", "\\|")
        rows.append(f"| `VIDEOQUEUE_{name.upper()}` | {shown} | {meaning} |")
    return "\n".join(rows) + "\n"
