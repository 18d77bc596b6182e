"""Finding human faces in images and video frames, offline (OpenCV's frontal-face Haar cascade).

Used for the Seedance consent flow: a face in a face-eligible model's media means the client
must attest consent before the job is accepted.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import cv2
    import numpy as np
    import numpy.typing as npt

    Gray = npt.NDArray[np.uint8]

# OpenCV and NumPy are imported where a face is looked for: the API process imports this
# module for its constants and never decodes (media/sandbox.py does).

CASCADE_FILE = "haarcascade_frontalface_default.xml"
IMAGE_MAX_SIDE = 1024
FRAME_MAX_SIDE = 640
MIN_FACE_PIXELS = 24
FACE_ROLES = {
    "image_url": "image",
    "end_image_url": "end_image",
    "reference_image_urls": "reference_image",
    "video_url": "video",
    "reference_video_urls": "reference_video",
}
"""Media kinds screened for faces, and the role each is named by in a `needs_consent` answer."""

# A CascadeClassifier must not be shared between threads; each request thread loads its own.
_local = threading.local()


def _cascade() -> cv2.CascadeClassifier:
    import cv2

    cascade: cv2.CascadeClassifier | None = getattr(_local, "cascade", None)
    if cascade is None:
        cascade = cv2.CascadeClassifier(cv2.data.haarcascades + CASCADE_FILE)  # type: ignore[attr-defined]
        if cascade.empty():
            raise RuntimeError(f"OpenCV's {CASCADE_FILE} could not be loaded")
        _local.cascade = cascade
    return cascade


def shrink(gray: Gray, max_side: int) -> Gray:
    """`gray` scaled down so its longer side is at most `max_side` (never scaled up)."""
    import cv2
    import numpy as np

    height, width = gray.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return gray
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(cv2.resize(gray, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def has_face(gray: Gray, *, max_side: int = IMAGE_MAX_SIDE) -> bool:
    """Whether a grayscale image shows at least one frontal human face."""
    import cv2

    small = cv2.equalizeHist(shrink(gray, max_side))
    faces = _cascade().detectMultiScale(
        small, scaleFactor=1.1, minNeighbors=5, minSize=(MIN_FACE_PIXELS, MIN_FACE_PIXELS)
    )
    return len(faces) > 0


def any_face(frames: Iterable[Gray]) -> bool:
    """Whether any of the frames shows a face (stops at the first that does)."""
    return any(has_face(frame, max_side=FRAME_MAX_SIDE) for frame in frames)
