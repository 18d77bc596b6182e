"""How fast the preview engine renders a 5 s 720p clip, against encoding blank frames alone.

The baseline sends the same number of solid-colour frames through the same RGB-to-YUV
conversion and libx264 settings, so the ratio is what drawing, overlay and audio add.

    .venv/bin/python bench/preview.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace

from videoqueue.engines.base import JobInput
from videoqueue.engines.preview import PreviewEngine
from videoqueue.media.mp4 import X264_OPTIONS, X264_THREAD_TYPE, X264_THREADS

JOB = JobInput(
    job_id="bench",
    model="preview-bench",
    prompt="A paper boat drifts down a rain-soaked street at night, neon signs reflected in the "
    "puddles, slow tracking shot",
    width=1280,
    height=720,
    fps=24,
    duration_s=5.0,
    frame_count=120,
    audio=True,
    seed=1234,
)


def render_preview(path: Path) -> None:
    PreviewEngine().generate(JOB, path, lambda _: None)


def encode_solid_frames(path: Path) -> None:
    n_frames = JOB.frame_count
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=JOB.fps, options=X264_OPTIONS)
        stream.width, stream.height, stream.pix_fmt = JOB.width, JOB.height, "yuv420p"
        stream.codec_context.thread_count = X264_THREADS
        stream.codec_context.thread_type = X264_THREAD_TYPE
        for i in range(n_frames):
            rgb = np.full((JOB.height, JOB.width, 3), (40, 90 + i % 64, 160), np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
                format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG
            )
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def best_of(repeat: int, run: Callable[[Path], None], path: Path) -> tuple[float, float]:
    """The fastest run's wall seconds, and its CPU seconds over all threads."""
    runs = []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        run(path)
        runs.append((time.perf_counter() - wall, time.process_time() - cpu))
    return min(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the best counts")
    args = parser.parse_args()
    n_frames = JOB.frame_count
    with tempfile.TemporaryDirectory() as tmp:
        cases = {
            "preview engine (video+audio)": (render_preview, Path(tmp, "preview.mp4")),
            "baseline: solid frames, x264": (encode_solid_frames, Path(tmp, "baseline.mp4")),
        }
        seconds = {name: best_of(args.repeat, run, path) for name, (run, path) in cases.items()}
        sizes = {name: path.stat().st_size for name, (_, path) in cases.items()}

    print(
        f"{JOB.width}x{JOB.height} {JOB.fps} fps, {JOB.duration_s:g} s = {n_frames} frames, "
        f"x264 {X264_OPTIONS} {X264_THREADS} {X264_THREAD_TYPE} threads, best of {args.repeat}"
    )
    print(f"{'case':<30} {'seconds':>8} {'CPU s':>6} {'frames/s':>9} {'realtime x':>11} {'MiB':>6}")
    for name, (wall, cpu) in seconds.items():
        print(
            f"{name:<30} {wall:>8.2f} {cpu:>6.2f} {n_frames / wall:>9.1f} "
            f"{JOB.duration_s / wall:>11.2f} {sizes[name] / 2**20:>6.2f}"
        )
    (engine, engine_cpu), (baseline, baseline_cpu) = seconds.values()
    print(f"engine / baseline: {engine / baseline:.2f}x wall, {engine_cpu / baseline_cpu:.2f}x CPU")


if __name__ == "__main__":
    main()
