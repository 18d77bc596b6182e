"""Real media files made in a line: images with and without a face, clips, sounds, data URLs.

The face comes from scikit-image's `astronaut()` (Eileen Collins); `coffee()` has no face.
"""

from __future__ import annotations

import base64
import io
import math
import wave
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from PIL import Image
from skimage import data

RGB = npt.NDArray[np.uint8]


def data_url(payload: bytes, mime: str = "application/octet-stream") -> str:
    return f"data:{mime};base64," + base64.b64encode(payload).decode()


def face_rgb(size: int = 320) -> RGB:
    return np.asarray(Image.fromarray(data.astronaut()).resize((size, size)), dtype=np.uint8)


def coffee_rgb(size: int = 320) -> RGB:
    return np.asarray(Image.fromarray(data.coffee()).resize((size, size)), dtype=np.uint8)


def encode_image(rgb: RGB, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=fmt)
    return buffer.getvalue()


def face_png(size: int = 320) -> bytes:
    return encode_image(face_rgb(size))


def coffee_png(size: int = 320) -> bytes:
    return encode_image(coffee_rgb(size))


def solid_png(width: int, height: int, color: tuple[int, int, int] = (40, 120, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def encode_video(
    frames: Sequence[RGB], fps: int, *, fmt: str = "mp4", codec: str | None = None
) -> bytes:
    """Frames as an H.264 MP4/MOV, or VP9 WebM (`fmt="webm"`), or in another `codec`."""
    buffer = io.BytesIO()
    codec = codec or ("libvpx-vp9" if fmt == "webm" else "libx264")
    with av.open(buffer, mode="w", format=fmt) as container:
        stream = container.add_stream(codec, rate=fps)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def duration_s(video: bytes) -> float:
    """How long a video file says it lasts, in seconds."""
    with av.open(io.BytesIO(video), "r") as container:
        assert container.duration is not None, "the container declares no duration"
        return container.duration / av.time_base


def clip(seconds: float, *, fps: int = 4, size: int = 64, fmt: str = "mp4") -> bytes:
    """A small clip of moving grey levels lasting `seconds`."""
    count = max(1, round(seconds * fps))
    frames = [np.full((size, size, 3), (i * 7) % 255, dtype=np.uint8) for i in range(count)]
    return encode_video(frames, fps, fmt=fmt)


def face_clip(seconds: float = 3.0, *, fps: int = 4, face_after_s: float = 1.5) -> bytes:
    """Coffee for `face_after_s`, then the astronaut's face: only a sampled later frame shows it."""
    coffee, face = coffee_rgb(), face_rgb()
    count = round(seconds * fps)
    return encode_video([coffee if i / fps < face_after_s else face for i in range(count)], fps)


def coffee_clip(seconds: float = 3.0, *, fps: int = 4) -> bytes:
    return encode_video([coffee_rgb()] * round(seconds * fps), fps)


def wav(seconds: float, *, rate: int = 8000) -> bytes:
    """A 440 Hz tone as 16-bit mono WAV."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (np.sin(2 * math.pi * 440 * t) * 12000).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()


def mp3(seconds: float, *, rate: int = 22050) -> bytes:
    """A 440 Hz tone as MP3."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=rate)
        stream.layout = "mono"
        total = int(seconds * rate)
        for start in range(0, total, 1152):
            n = min(1152, total - start)
            t = (np.arange(start, start + n) / rate).astype(np.float32)
            samples = (np.sin(2 * math.pi * 440 * t) * 0.4).astype(np.float32).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def faststart_noise_mp4(path: Path, width: int, height: int, frames: int, seed: int = 0) -> bytes:
    """An H.264 MP4 of random frames with its index first (`moov` before `mdat`): a copy cut
    short still declares every frame, so only decoding finds it truncated."""
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        video = container.add_stream("libx264", rate=24)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        rng = np.random.default_rng(seed)
        for _ in range(frames):
            pixels = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
            container.mux(video.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(video.encode())
    return path.read_bytes()
