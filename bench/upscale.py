"""Benchmark: `UpscaleEngine` against the ffmpeg binary doing the same x2 upscale.

Both sides decode the same 5 s 854x480 24 fps clip with AAC audio, scale it x2 with Lanczos,
encode H.264 with the same x264 preset, CRF and thread count, and copy the audio. Each runs in
its own child process (the engine's reports the time of `generate()` alone) three times,
interleaved; the best wall time, the least CPU time (whole child process) and the child's peak
RSS are printed. CPU time is the steadier figure on a busy machine.

    .venv/bin/python bench/upscale.py [--preset veryfast] [--crf 20] [--threads 0] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import av
import imageio_ffmpeg  # type: ignore[import-untyped]
import numpy as np

from videoqueue.engines.base import JobInput
from videoqueue.engines.upscale import UpscaleEngine
from videoqueue.engines.upscale_size import output_size

WIDTH, HEIGHT, FPS, SECONDS, FACTOR = 854, 480, 24, 5, 2
FRAMES = FPS * SECONDS


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_mb: float
    cpu_seconds: float
    process_seconds: float  # the whole child process, interpreter start and imports included


def make_clip(path: Path) -> None:
    """A moving gradient with a bouncing textured square, and a 440 Hz stereo tone."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=FPS, options={"preset": "fast", "crf": "18"})
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        audio = container.add_stream("aac", rate=48000, layout="stereo")
        ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
        texture = ((xs // 8 + ys // 8) % 2 * 255).astype(np.uint8)
        for i in range(FRAMES):
            rgb = np.stack([(xs + 4 * i) % 256, (ys + 2 * i) % 256, (xs + ys) // 6 % 256], -1)
            x, y = (13 * i) % (WIDTH - 160), int(abs(np.sin(i / 9)) * (HEIGHT - 160))
            rgb[y : y + 160, x : x + 160] = texture[:160, :160, None]
            frame = av.VideoFrame.from_ndarray(rgb.astype(np.uint8), format="rgb24")
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        tone = np.sin(np.arange(48000 * SECONDS) * 2 * np.pi * 440 / 48000).astype(np.float32)
        for start in range(0, tone.size, 1024):
            chunk = np.repeat(tone[None, start : start + 1024], 2, axis=0)
            samples = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            samples.sample_rate, samples.pts = 48000, start
            container.mux(audio.encode(samples))
        container.mux(audio.encode(None))


def run_engine(clip: Path, out: Path, args: argparse.Namespace) -> Run:
    command = [
        sys.executable,
        __file__,
        "--child",
        str(clip),
        str(out),
        "--preset",
        args.preset,
        "--crf",
        str(args.crf),
        "--threads",
        str(args.threads),
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    report = json.loads(proc.stdout.read())
    peak_mb, cpu_seconds = _reap(proc)
    return Run(report["seconds"], peak_mb, cpu_seconds, time.perf_counter() - start)


def run_ffmpeg(clip: Path, out: Path, args: argparse.Namespace) -> Run:
    width, height = output_size(WIDTH, HEIGHT, FACTOR)
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-i",
        str(clip),
        "-vf",
        f"scale=w={width}:h={height}:flags=lanczos,format=yuv420p",
        "-c:v",
        "libx264",
        "-preset",
        args.preset,
        "-crf",
        str(args.crf),
        "-threads",
        str(args.threads),
        "-c:a",
        "copy",
        "-movflags",
        "+faststart",
        str(out),
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(command)
    peak_mb, cpu_seconds = _reap(proc)
    seconds = time.perf_counter() - start
    return Run(seconds, peak_mb, cpu_seconds, seconds)


def _reap(proc: subprocess.Popen[bytes]) -> tuple[float, float]:
    """Wait for `proc` and return its peak RSS in MB and the CPU seconds it used.

    `os.wait4` gives the same figure as `getrusage(RUSAGE_CHILDREN)`, but for this one child
    rather than the largest child so far, so the two tools can run interleaved.
    """
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{proc.args!r} exited with {proc.returncode}")
    return usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def child(clip: Path, out: Path, args: argparse.Namespace) -> None:
    engine = UpscaleEngine(preset=args.preset, crf=args.crf, threads=args.threads)
    job = JobInput(
        job_id="bench", model="topaz-video-upscale", video_path=clip, upscale_factor=FACTOR
    )
    start = time.perf_counter()
    engine.generate(job, out, lambda _fraction: None)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument("--crf", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", nargs=2, type=Path, metavar=("CLIP", "OUT"))
    args = parser.parse_args()
    if args.child:
        clip, out = args.child
        child(clip, out, args)
        return

    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        make_clip(clip)
        engine_runs, ffmpeg_runs = [], []
        for _ in range(args.runs):
            engine_runs.append(run_engine(clip, Path(tmp) / "engine.mp4", args))
            ffmpeg_runs.append(run_ffmpeg(clip, Path(tmp) / "ffmpeg.mp4", args))
        sizes = {name: (Path(tmp) / f"{name}.mp4").stat().st_size for name in ("engine", "ffmpeg")}

    width, height = output_size(WIDTH, HEIGHT, FACTOR)
    print(
        f"{WIDTH}x{HEIGHT} {FPS} fps {SECONDS} s x{FACTOR} -> {width}x{height}, "
        f"libx264 preset={args.preset} crf={args.crf} threads={args.threads}, "
        f"best of {args.runs}, {os.cpu_count()} CPUs"
    )
    print(f"{'tool':<26}{'seconds':>9}{'frames/s':>10}{'CPU s':>7}{'peak MB':>9}{'output KB':>11}")
    rows = (
        (
            "UpscaleEngine.generate()",
            min(run.seconds for run in engine_runs),
            engine_runs,
            "engine",
        ),
        (
            "UpscaleEngine, process",
            min(run.process_seconds for run in engine_runs),
            engine_runs,
            "engine",
        ),
        ("ffmpeg binary", min(run.seconds for run in ffmpeg_runs), ffmpeg_runs, "ffmpeg"),
    )
    for label, seconds, runs, output in rows:
        print(
            f"{label:<26}{seconds:>9.2f}{FRAMES / seconds:>10.1f}"
            f"{min(run.cpu_seconds for run in runs):>7.2f}"
            f"{max(run.peak_mb for run in runs):>9.0f}{sizes[output] / 1024:>11.0f}"
        )
    ratio = min(run.seconds for run in ffmpeg_runs) / min(run.seconds for run in engine_runs)
    print(f"ratio engine fps / ffmpeg fps: {ratio:.2f}")


if __name__ == "__main__":
    main()
