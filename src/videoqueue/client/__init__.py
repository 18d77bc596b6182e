"""A client for videoqueue and any Venice-compatible video API (docs/sdk.md)."""

from videoqueue.client.asynchronous import AsyncClient
from videoqueue.client.base import RetryPolicy
from videoqueue.client.errors import (
    AuthenticationFailed,
    BadRequest,
    Conflict,
    Forbidden,
    JobNotReady,
    NotFound,
    PaymentRequired,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    Unprocessable,
    VideoqueueError,
    WaitTimedOut,
)
from videoqueue.client.jobs import JobStatus, Progress, QueuedJob
from videoqueue.client.sync import Client
from videoqueue.client.wallet import WalletAuth

__all__ = [
    "AsyncClient",
    "AuthenticationFailed",
    "BadRequest",
    "Client",
    "Conflict",
    "Forbidden",
    "JobNotReady",
    "JobStatus",
    "NotFound",
    "PaymentRequired",
    "Progress",
    "QueuedJob",
    "RateLimited",
    "RetryPolicy",
    "ServerError",
    "ServiceUnavailable",
    "Unprocessable",
    "VideoqueueError",
    "WaitTimedOut",
    "WalletAuth",
]
