"""Errors raised while reading media files that clients send."""

from __future__ import annotations

from videoqueue.errors import VideoqueueError


class MediaError(VideoqueueError):
    """Media file could not be decoded"""

    status = 400
