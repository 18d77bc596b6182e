"""Errors raised while reading media files that clients send.

Codes and statuses follow Venice's error-code table (spec §3.2): a file of the wrong kind or one
that cannot be decoded is a 400; a file that decodes but is out of range (too long, too large,
wrong shape) is a 422. Every message names the field and the limit, so a client knows what to fix.
"""

from __future__ import annotations

from videoqueue.errors import VideoqueueError


class MediaError(VideoqueueError):
    """Media file could not be decoded"""

    status = 400


class CorruptedImage(MediaError):
    """The image could not be decoded"""

    code = "CORRUPTED_IMAGE"


class ImageTooSmall(MediaError):
    """The image is too small"""

    code = "IMAGE_TOO_SMALL"


class ImageTooLarge(MediaError):
    """The image is too large"""

    status = 422
    code = "IMAGE_TOO_LARGE"


class ImageAspectRatioOutOfBounds(MediaError):
    """The image's aspect ratio is out of bounds"""

    status = 422
    code = "IMAGE_ASPECT_RATIO_OUT_OF_BOUNDS"


class InvalidAudioFormat(MediaError):
    """Only WAV and MP3 audio is accepted"""

    code = "INVALID_AUDIO_FORMAT"


class InvalidVideoFormat(MediaError):
    """Only MP4, MOV and WebM video is accepted"""

    code = "INVALID_VIDEO_FORMAT"


class MediaTooLarge(MediaError):
    """The media file is too large"""

    status = 422


class DurationTooLong(MediaError):
    """The media is too long"""

    status = 422


class DurationTooShort(MediaError):
    """The media is too short"""

    status = 422


class MediaUrlRefused(MediaError):
    """This server does not fetch media from that address"""

    code = "MEDIA_URL_NOT_ALLOWED"


class MediaFetchFailed(MediaError):
    """The media URL could not be fetched"""

    code = "MEDIA_FETCH_FAILED"
