"""The `upscale` engine behind `topaz-video-upscale`: Lanczos scaling and H.264, on any CPU.

One streaming pass — demux, decode, scale, encode, mux — so memory stays flat whatever the
length of the video. The audio track is copied as it is when MP4 can carry it. The pass itself,
`upscale_video`, takes the per-frame scaler as an argument, so learned upscalers reuse it.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TypeAlias, TypeVar, cast

import av
import av.filter
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.container import InputContainer, OutputContainer
from av.packet import Packet
from av.video.frame import PictureType, VideoFrame
from av.video.stream import VideoStream

from videoqueue.engines.base import EngineError, JobInput, ProgressCallback, VideoInfo
from videoqueue.engines.upscale_size import (
    DEFAULT_MAX_OUTPUT_PIXELS,
    UpscaleTooLarge,
    ensure_within_cap,
    output_size,
)
from videoqueue.media.probe import LOCAL_FILES_ONLY

UPSCALE_FACTORS = (1, 2, 4)

MP4_AUDIO_CODECS = frozenset({"aac", "mp3", "alac", "opus", "flac", "ac3", "eac3"})
"""Audio codecs the MP4 muxer takes as they are; any other is re-encoded to AAC."""

PROGRESS_STEPS = 50

READ_AHEAD = 4
"""Decoded items waiting for the encoder: enough to keep it busy, few enough to stay small."""

FrameScaler: TypeAlias = Callable[[VideoFrame | None], Iterable[VideoFrame]]
"""Takes each decoded frame, then None at the end of the video; returns the frames now ready."""

ScalerFactory: TypeAlias = Callable[[VideoStream, int, int, int], FrameScaler]
"""Builds a `FrameScaler` from the input stream, the output width and height, and the factor."""

_DEFAULT_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 8: "7.1"}

_T = TypeVar("_T")
# A string: `Packet` is generic in the stubs only.
_Decoded: TypeAlias = "VideoFrame | AudioFrame | Packet[AudioStream]"


@dataclass(frozen=True)
class X264Options:
    """How the output is encoded: libx264, yuv420p, in an MP4 with `+faststart`."""

    preset: str = "veryfast"
    crf: int = 20
    threads: int = 0  # 0: libx264, the decoder and the scaler choose from the CPU count


class UpscaleEngine:
    """Upscales `job.video_path` by `job.upscale_factor` (1, 2 or 4) into an H.264 MP4.

    Lanczos scaling; factor 1 keeps the size (rounded down to even) with a mild sharpen.
    Frame count, timestamps and frame rate are the input's; the audio is copied, or re-encoded
    to AAC when MP4 cannot carry it.
    """

    name = "upscale"

    def __init__(
        self,
        max_output_pixels: int = DEFAULT_MAX_OUTPUT_PIXELS,
        *,
        preset: str = "veryfast",
        crf: int = 20,
        threads: int = 0,
    ) -> None:
        self.max_output_pixels = max_output_pixels
        self.x264 = X264Options(preset, crf, threads)

    def generate(self, job: JobInput, output_path: Path, progress: ProgressCallback) -> VideoInfo:
        return upscale_video(
            job,
            output_path,
            progress,
            self._lanczos,
            max_output_pixels=self.max_output_pixels,
            x264=self.x264,
        )

    def _lanczos(self, video_in: VideoStream, width: int, height: int, factor: int) -> FrameScaler:
        graph = av.filter.Graph()
        graph.threads = self.x264.threads
        chain = [
            graph.add_buffer(template=video_in),
            graph.add("scale", f"w={width}:h={height}:flags=lanczos"),
        ]
        if factor == 1:
            chain.append(graph.add("unsharp", "luma_msize_x=5:luma_msize_y=5:luma_amount=0.6"))
        chain += [graph.add("format", "pix_fmts=yuv420p"), graph.add("buffersink")]
        graph.link_nodes(*chain)
        graph.configure()

        def scale(frame: VideoFrame | None) -> Iterator[VideoFrame]:
            graph.vpush(frame)
            while True:
                try:
                    yield graph.vpull()
                except (BlockingIOError, av.EOFError):
                    return

        return scale


def upscale_video(
    job: JobInput,
    output_path: Path,
    progress: ProgressCallback,
    make_scaler: ScalerFactory,
    *,
    max_output_pixels: int,
    x264: X264Options,
) -> VideoInfo:
    """Decode `job.video_path`, scale each frame with `make_scaler`'s scaler, encode H.264."""
    # 1. Check inputs
    if job.video_path is None:
        raise EngineError("upscale needs an input video (video_path is missing)")
    factor = job.upscale_factor
    if factor not in UPSCALE_FACTORS:
        raise EngineError(f"upscale_factor must be one of {UPSCALE_FACTORS}, not {factor}")

    try:
        with (
            _open_input(job.video_path) as source,
            av.open(
                str(output_path), "w", format="mp4", options={"movflags": "+faststart"}
            ) as sink,
        ):
            # 2. Probe the input and check the output size
            video_in = _video_stream(source, x264.threads)
            audio_in = source.streams.audio[0] if source.streams.audio else None
            width, height = video_in.codec_context.width, video_in.codec_context.height
            try:
                ensure_within_cap(width, height, factor, max_output_pixels)
            except UpscaleTooLarge as exc:
                raise EngineError(exc.message) from exc
            out_w, out_h = output_size(width, height, factor)
            rate = video_in.average_rate or video_in.guessed_rate or Fraction(24)
            time_base = video_in.time_base or 1 / rate
            counter = _Progress(progress, _estimate_frames(source, video_in, rate))

            # 3. Set up the scaler, the H.264 encoder and the audio path
            scaler = make_scaler(video_in, out_w, out_h, factor)
            video_out = _add_video_stream(sink, x264, rate, time_base, out_w, out_h)
            audio_out, copy_audio = _add_audio_stream(sink, audio_in)

            # 4. Decode and scale on a second thread; encode and mux on this one
            frames, first_pts, last_pts = 0, 0, 0
            pts_step = max(1, round(1 / (rate * time_base)))
            decoded = _decode_and_scale(source, video_in, audio_in, scaler, pts_step)
            with contextlib.closing(_read_ahead(decoded, READ_AHEAD)) as items:
                for item in items:
                    if isinstance(item, VideoFrame):
                        sink.mux(video_out.encode(item))
                        first_pts = (item.pts or 0) if frames == 0 else first_pts
                        last_pts, frames = item.pts or 0, frames + 1
                        counter.report(frames)
                    elif audio_out is None:
                        continue
                    elif isinstance(item, AudioFrame):
                        sink.mux(audio_out.encode(item))
                    elif copy_audio:
                        item.stream = audio_out
                        sink.mux(item)

            # 5. Flush the encoders
            sink.mux(video_out.encode(None))
            if audio_out is not None and not copy_audio:
                sink.mux(audio_out.encode(None))
            if frames == 0:
                raise EngineError("upscale failed: the input video has no decodable frames")
            declared = video_in.frames
            if declared and frames < declared - max(2, declared // 50):
                raise EngineError(
                    f"upscale failed: the input video ended after {frames} of its {declared} "
                    "frames; it is truncated or corrupt"
                )
    except av.FFmpegError as exc:
        output_path.unlink(missing_ok=True)
        raise EngineError(
            f"upscale failed: the input video could not be decoded or encoded ({exc})"
        ) from exc
    except BaseException:  # our errors, and the caller's own from `progress`
        output_path.unlink(missing_ok=True)
        raise

    # 6. Report what was written
    progress(1.0)
    duration_s = float((last_pts - first_pts) * time_base) + 1 / float(rate)
    return VideoInfo(
        width=out_w,
        height=out_h,
        fps=float(rate),
        duration_s=duration_s,
        frames=frames,
        has_audio=audio_out is not None,
    )


class _Progress:
    """Reports frames done as a fraction, up by 1/`PROGRESS_STEPS` or more each time, below 1.0.

    The step bounds the calls even when the frame count was guessed short.
    """

    def __init__(self, callback: ProgressCallback, total_frames: int) -> None:
        self.callback, self.total_frames, self.reported = callback, max(total_frames, 1), 0.0

    def report(self, frames_done: int) -> None:
        fraction = min(frames_done / self.total_frames, 0.99)
        if fraction - self.reported >= 1 / PROGRESS_STEPS:
            self.reported = fraction
            self.callback(fraction)


@contextlib.contextmanager
def _open_input(path: Path) -> Iterator[InputContainer]:
    try:
        source = av.open(str(path), "r", options=LOCAL_FILES_ONLY)
    except av.FFmpegError as exc:
        raise EngineError(f"upscale failed: the input is not a readable video ({exc})") from exc
    with source:
        yield source


def _video_stream(source: InputContainer, threads: int) -> VideoStream:
    if not source.streams.video:
        raise EngineError("upscale failed: the input has no video stream (audio only?)")
    stream = source.streams.video[0]
    if not stream.codec_context.width or not stream.codec_context.height:
        raise EngineError("upscale failed: the input video stream has no dimensions")
    stream.codec_context.thread_type = "AUTO"
    stream.codec_context.thread_count = threads
    return stream


def _estimate_frames(source: InputContainer, stream: VideoStream, rate: Fraction) -> int:
    if stream.frames:
        return stream.frames
    if stream.duration is not None and stream.time_base is not None:
        return max(1, round(stream.duration * stream.time_base * rate))
    if source.duration is not None:
        return max(1, round(source.duration / av.time_base * rate))
    return 1


def _add_video_stream(
    sink: OutputContainer,
    x264: X264Options,
    rate: Fraction,
    time_base: Fraction,
    width: int,
    height: int,
) -> VideoStream:
    stream = sink.add_stream(
        "libx264", rate=rate, options={"preset": x264.preset, "crf": str(x264.crf)}
    )
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    # The input's time base keeps every frame's timestamp, hence the duration.
    stream.codec_context.time_base = time_base
    # FRAME|SLICE makes libx264 use frame threads, as the ffmpeg command line does.
    stream.codec_context.thread_type = "AUTO"
    stream.codec_context.thread_count = x264.threads
    return stream


def _add_audio_stream(
    sink: OutputContainer, audio_in: AudioStream | None
) -> tuple[AudioStream | None, bool]:
    """The output audio stream and whether its packets are copied (else re-encoded to AAC)."""
    if audio_in is None:
        return None, False
    if audio_in.codec_context.name in MP4_AUDIO_CODECS:
        return sink.add_stream_from_template(audio_in), True
    stream = sink.add_stream("aac", rate=audio_in.codec_context.sample_rate or 48000)
    layout = audio_in.codec_context.layout
    # A layout with no channel order ("2 channels", common from PCM in MKV) makes the AAC
    # encoder refuse to open; name the usual order for that many channels instead.
    stream.layout = (
        _DEFAULT_LAYOUTS.get(layout.nb_channels, "stereo")
        if layout.name.endswith(" channels")
        else layout
    )
    stream.format = "fltp"  # the only sample format FFmpeg's AAC encoder takes
    return stream, False


def _decode_and_scale(
    source: InputContainer,
    video_in: VideoStream,
    audio_in: AudioStream | None,
    scaler: FrameScaler,
    pts_step: int,
) -> Generator[_Decoded, None, None]:
    """The scaled video frames, and the audio as packets to copy or frames to re-encode."""
    decode_audio = audio_in is not None and audio_in.codec_context.name not in MP4_AUDIO_CODECS
    next_pts = 0
    for packet in source.demux(*(s for s in (video_in, audio_in) if s is not None)):
        if packet.stream is not video_in:
            if audio_in is not None and decode_audio:
                yield from audio_in.decode(packet)
            elif packet.dts is not None:
                yield cast("Packet[AudioStream]", packet)
            continue
        for frame in video_in.decode(packet):
            if frame.pts is None:  # raw H.264 and the like: count on at the nominal rate
                frame.pts = next_pts
            next_pts = frame.pts + pts_step
            yield from _for_encoder(scaler(frame))
    yield from _for_encoder(scaler(None))


def _for_encoder(frames: Iterable[VideoFrame]) -> Iterator[VideoFrame]:
    """The frames, reset to let the encoder choose its own frame types, as ffmpeg does."""
    for frame in frames:
        frame.pict_type = PictureType.NONE
        yield frame


def _read_ahead(items: Generator[_T, None, None], depth: int) -> Generator[_T, None, None]:
    """Yield `items` as a second thread produces them, at most `depth` ahead.

    Decoding and scaling then overlap encoding, as in the ffmpeg command line: PyAV releases
    the GIL inside FFmpeg's calls. Closing this generator stops the thread before returning,
    so the caller may close the input container right after.
    """
    buffer: queue.Queue[tuple[bool, _T | BaseException | None]] = queue.Queue(depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                buffer.put((True, item))
            buffer.put((False, None))
        except BaseException as exc:  # handed to the consumer, which raises it
            buffer.put((False, exc))
        finally:
            items.close()

    thread = threading.Thread(target=produce, name="upscale-decode", daemon=True)
    thread.start()
    try:
        while True:
            more, value = buffer.get()
            if isinstance(value, BaseException):
                raise value
            if not more:
                return
            yield cast(_T, value)
    finally:
        stop.set()
        while thread.is_alive():  # a producer blocked on a full buffer needs room to stop
            with contextlib.suppress(queue.Empty):
                buffer.get(timeout=0.05)
        thread.join()
