"""Writing frames (and an optional stereo track) as a reproducible H.264/AAC MP4."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc
from PIL import Image

SAMPLE_RATE = 48_000
AAC_FRAME_SAMPLES = 1024
# With macroblock-tree rate control, x264 encodes the same frames differently from run to run
# at some sizes (320x180, 854x480), so it is off; the cost is a few percent of bitrate.
X264_OPTIONS = {"preset": "veryfast", "crf": "23", "x264-params": "mbtree=0"}
# x264's output depends on its thread count, so the count must not follow the machine. Frame
# threads encode in the background while the next frame is drawn.
X264_THREADS = 2
X264_THREAD_TYPE = "FRAME"
MAX_PROGRESS_CALLS = 40

Audio = npt.NDArray[np.float32]
"""Planar stereo samples at `SAMPLE_RATE`, shape (2, samples), in [-1, 1]."""

Frame = Image.Image | npt.NDArray[np.uint8]
"""An RGB picture: a Pillow image or an (height, width, 3) uint8 array."""


def write_mp4(
    path: Path,
    fps: int,
    size: tuple[int, int],
    n_frames: int,
    frames: Iterable[Frame],
    audio: Audio | None,
    progress: Callable[[float], None],
) -> None:
    """Encode `n_frames` frames of `size` at `fps`, reporting the fraction encoded."""
    # bitexact leaves out the muxer's version string, so the bytes depend on the job alone.
    options = {"movflags": "+faststart", "fflags": "+bitexact"}
    with av.open(str(path), "w", format="mp4", options=options) as container:
        video = container.add_stream("libx264", rate=fps, options=X264_OPTIONS)
        video.width, video.height = size
        video.pix_fmt = "yuv420p"
        video.codec_context.thread_count = X264_THREADS
        video.codec_context.thread_type = X264_THREAD_TYPE
        video.codec_context.colorspace = Colorspace.ITU709
        video.codec_context.color_primaries = ColorPrimaries.BT709
        video.codec_context.color_trc = ColorTrc.BT709
        video.codec_context.color_range = ColorRange.MPEG
        sound: AudioStream | None = None
        if audio is not None:
            sound = container.add_stream("aac", rate=SAMPLE_RATE)
            sound.layout = "stereo"
            sound.bit_rate = 128_000

        every = max(1, math.ceil(n_frames / MAX_PROGRESS_CALLS))
        sent = 0
        for i, image in enumerate(frames):
            rgb = av.VideoFrame.from_numpy_buffer(np.asarray(image), format="rgb24")
            frame = rgb.reformat(
                format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG
            )
            frame.pts = i
            container.mux(video.encode(frame))
            if sound is not None and audio is not None:
                # Audio keeps pace with video so the muxer never buffers a whole track.
                upto = round((i + 1) * SAMPLE_RATE / fps)
                sent = _encode_audio(container, sound, audio, sent, upto)
            if (i + 1) % every == 0 and i + 1 < n_frames:
                progress((i + 1) / n_frames)
        container.mux(video.encode(None))
        if sound is not None and audio is not None:
            _encode_audio(container, sound, audio, sent, audio.shape[1], final=True)
            container.mux(sound.encode(None))


def _encode_audio(
    container: OutputContainer,
    stream: AudioStream,
    audio: Audio,
    sent: int,
    upto: int,
    *,
    final: bool = False,
) -> int:
    """Encode whole AAC frames of `audio[:, sent:upto]` (and the short tail if `final`)."""
    while sent + AAC_FRAME_SAMPLES <= upto or (final and sent < upto):
        chunk = np.ascontiguousarray(audio[:, sent : min(sent + AAC_FRAME_SAMPLES, upto)])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
        frame.sample_rate = SAMPLE_RATE
        frame.time_base = Fraction(1, SAMPLE_RATE)
        frame.pts = sent
        container.mux(stream.encode(frame))
        sent += chunk.shape[1]
    return sent
