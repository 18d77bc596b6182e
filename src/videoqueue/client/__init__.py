"""A client for videoqueue and any Venice-compatible video API (docs/sdk.md)."""

from videoqueue.client.asynchronous import AsyncClient
from videoqueue.client.base import RetryPolicy
from videoqueue.client.errors import (
    AuthenticationFailed,
    BadRequest,
    Conflict,
    Forbidden,
    JobEnded,
    JobNotReady,
    NotFound,
    NotSupported,
    PaymentRequired,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    Unprocessable,
    VideoqueueError,
    WaitTimedOut,
)
from videoqueue.client.jobs import (
    Cancelled,
    JobFailure,
    JobPage,
    JobStatus,
    JobSummary,
    Progress,
    QueuedJob,
)
from videoqueue.client.sync import Client
from videoqueue.client.wallet import WalletAuth

__all__ = [
    "AsyncClient",
    "AuthenticationFailed",
    "BadRequest",
    "Cancelled",
    "Client",
    "Conflict",
    "Forbidden",
    "JobEnded",
    "JobFailure",
    "JobNotReady",
    "JobPage",
    "JobStatus",
    "JobSummary",
    "NotFound",
    "NotSupported",
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
