"""`videoqueue generate` and `videoqueue upscale` run as a user runs them, against a real server:
the quote printed, the MP4 saved where `-o` says."""

from __future__ import annotations

import base64
import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import av
from rich.console import Console

from tests.accounts import balance
from tests.conftest import Env, load_job
from tests.media_files import clip, solid_png
from videoqueue.client import Progress, QueuedJob
from videoqueue.client_cli import ProgressLine, media_url
from videoqueue.jobs.states import JobState
from videoqueue.workers import Supervisor


def _videoqueue(base_url: str, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "VIDEOQUEUE_BASE_URL": base_url, "VIDEOQUEUE_API_KEY": key}
    return subprocess.run(
        [sys.executable, "-m", "videoqueue.cli", *args, "--poll-interval", "0.1"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_ctrl_c_while_waiting_asks_and_cancels_the_job(env: Env, api_url: str) -> None:
    account = env.make_account(balance_usd=10)
    environment = {
        **os.environ,
        "VIDEOQUEUE_BASE_URL": api_url,
        "VIDEOQUEUE_API_KEY": env.make_key(account),
    }
    command = [sys.executable, "-m", "videoqueue.cli", "generate", "x"]
    command += ["-m", "wan-2.5-preview-text-to-video", "--poll-interval", "0.1"]
    with subprocess.Popen(
        command,
        env=environment,
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    ) as process:
        assert process.stderr is not None and process.stdin is not None
        line = ""
        while not line.startswith("queued"):
            line = process.stderr.readline()
            assert line, "generate ended before it queued"
        queue_id = line.split()[-1]
        # No worker runs here: the job waits in the queue until the interrupt.
        process.send_signal(signal.SIGINT)
        process.stdin.write("y\n")
        process.stdin.flush()
        rest = process.stderr.read()
        assert process.wait(timeout=60) == 130, rest
    assert f"Cancel job {queue_id}?" in rest and f"job {queue_id} cancelled" in rest
    assert load_job(env.db, queue_id).state is JobState.CANCELLED
    assert balance(env, account) == 10_000_000


def _size_and_frames(path: Path) -> tuple[tuple[int, int], int]:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        size = (video.codec_context.width, video.codec_context.height)
        return size, sum(1 for _ in container.decode(video=0))


def test_generate_prints_the_quote_and_saves_the_video(
    env: Env, base_url: str, workers: Supervisor, tmp_path: Path
) -> None:
    out = tmp_path / "kite.mp4"
    run = _videoqueue(
        base_url,
        env.make_key(),
        "generate",
        "A red kite over dunes",
        "-m",
        "wan-2.5-preview-text-to-video",
        "--resolution",
        "480p",
        "--aspect-ratio",
        "9:16",
        "-o",
        str(out),
    )
    assert run.returncode == 0, run.stderr
    assert "quote: $0.25 USD" in run.stderr
    assert run.stdout.strip() == str(out)
    assert _size_and_frames(out) == ((270, 480), 120)


def test_generate_sends_local_images_as_the_first_and_last_frames(
    env: Env, base_url: str, workers: Supervisor, tmp_path: Path
) -> None:
    first, last = tmp_path / "blue.png", tmp_path / "red.png"
    first.write_bytes(solid_png(640, 480, (30, 60, 220)))
    last.write_bytes(solid_png(640, 480, (220, 40, 30)))
    out = tmp_path / "out.mp4"
    run = _videoqueue(
        base_url,
        env.make_key(),
        "generate",
        "from blue to red",
        "-m",
        "flux-3-first-last-frame-to-video",
        "--image",
        str(first),
        "--end-image",
        str(last),
        "-o",
        str(out),
    )
    assert run.returncode == 0, run.stderr
    with av.open(str(out)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    opening, closing = frames[0].mean(axis=(0, 1)), frames[-1].mean(axis=(0, 1))
    assert opening[2] > opening[0] + 100, opening
    assert closing[0] > closing[2] + 100, closing


def test_upscale_doubles_a_local_clip(
    env: Env, base_url: str, workers: Supervisor, tmp_path: Path
) -> None:
    source = tmp_path / "in.mp4"
    source.write_bytes(clip(2.0, size=64))
    out = tmp_path / "big.mp4"
    run = _videoqueue(base_url, env.make_key(), "upscale", str(source), "-x", "2", "-o", str(out))
    assert run.returncode == 0, run.stderr
    assert "quote: $" in run.stderr
    assert _size_and_frames(out)[0] == (128, 128)


def test_a_refusal_is_printed_with_its_status_and_exits_1(env: Env, api_url: str) -> None:
    run = _videoqueue(api_url, "vq_wrong", "generate", "x", "-m", "wan-2.5-preview-text-to-video")
    assert run.returncode == 1
    assert "401: Authentication failed" in run.stderr


def test_a_local_file_becomes_a_data_url(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(b"\x89PNG fake")
    assert (
        media_url(str(image))
        == "data:image/png;base64," + base64.b64encode(b"\x89PNG fake").decode()
    )
    assert media_url("https://example.org/a.png") == "https://example.org/a.png"


def test_the_progress_line_shows_state_position_percent_elapsed_and_eta() -> None:
    screen = Console(file=io.StringIO(), width=120, color_system=None)
    line = ProgressLine(QueuedJob(model="m", queue_id="q"), screen)

    def shown(seen: Progress) -> str:
        line.update(seen)
        with screen.capture() as captured:
            screen.print(line.progress.get_renderable())
        return captured.get()

    waiting = shown(Progress("QUEUED", 0.0, 3, elapsed_s=4.0))
    assert "queued (position 3)" in waiting and "0%" in waiting and "elapsed 0:04" in waiting
    running = shown(Progress("PROCESSING", 0.25, None, elapsed_s=10.0))
    assert "processing" in running and "25%" in running and "ETA 0:30" in running
    unknown = shown(Progress("PROCESSING", None, None, elapsed_s=75.0))
    assert "elapsed 1:15" in unknown and "ETA -:--" in unknown
