"""`videoqueue generate` and `videoqueue upscale`: the SDK from a terminal, against this or any
Venice-compatible server, with the quote first and a live progress bar."""

from __future__ import annotations

import argparse
import base64
import mimetypes
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn
from rich.prompt import Confirm

from videoqueue.client import (
    Client,
    JobEnded,
    JobStatus,
    NotSupported,
    QueuedJob,
    VideoqueueError,
)
from videoqueue.client import Progress as JobProgress
from videoqueue.client.base import DEFAULT_BASE_URL

console = Console(stderr=True)


def media_url(value: str) -> str:
    """A URL as given; a local file as a `data:` URL."""
    if value.startswith(("http://", "https://", "data:")):
        return value
    path = Path(value)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {value}")
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode()


def _client(args: argparse.Namespace) -> Client:
    return Client(args.base_url, api_key=args.api_key)


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-:--"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


class ProgressLine:
    """The live line: state (and queue position), bar, percent, elapsed, ETA."""

    def __init__(self, job: QueuedJob, console: Console) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.fields[state]}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("elapsed {task.fields[elapsed]}  ETA {task.fields[eta]}"),
            console=console,
            transient=False,
        )
        self.task: TaskID = self.progress.add_task(
            job.queue_id, total=None, state="QUEUED", elapsed="0:00", eta="-:--"
        )

    def update(self, seen: JobProgress) -> None:
        state = seen.state.lower()
        if seen.queue_position is not None:
            state = f"{state} (position {seen.queue_position})"
        self.progress.update(
            self.task,
            total=None if seen.fraction is None else 1.0,
            completed=seen.fraction or 0.0,
            state=state,
            elapsed=_clock(seen.elapsed_s),
            eta=_clock(seen.eta_s),
        )


def _wait(client: Client, job: QueuedJob, poll_interval: float) -> JobStatus | None:
    """Wait with the bar; on Ctrl-C, offer to cancel. None if the user stopped waiting."""
    bar = ProgressLine(job, console)
    try:
        console.print(f"queued {job.model} job {job.queue_id}", soft_wrap=True)
        with bar.progress:
            return client.wait(job, on_progress=bar.update, poll_interval=poll_interval)
    except KeyboardInterrupt:
        pass
    if not Confirm.ask(f"Cancel job {job.queue_id}?", console=console, default=False):
        console.print(f"job {job.queue_id} left on the server; model {job.model}", soft_wrap=True)
        return None
    try:
        client.cancel(job.queue_id, job.model)
    except NotSupported:
        console.print(
            f"{client.base_url} cannot cancel jobs: job {job.queue_id} keeps running "
            f"(model {job.model})",
            soft_wrap=True,
        )
        print(job.queue_id, flush=True)
        return None
    except JobEnded as error:
        console.print(f"job {job.queue_id} was not cancelled: {error.message}", soft_wrap=True)
        return None
    console.print(f"job {job.queue_id} cancelled", soft_wrap=True)
    return None


def run_with_client(args: argparse.Namespace, action: Callable[[Client], int]) -> int:
    """`action`'s exit status; a refusal or an unreachable server printed, status 1."""
    try:
        with _client(args) as client:
            return action(client)
    except VideoqueueError as error:
        console.print(f"[red]{error}[/]", soft_wrap=True, highlight=False)
        return 1
    except httpx.TransportError as error:
        console.print(f"[red]cannot reach {args.base_url}: {error}[/]", soft_wrap=True)
        return 1


def _run(args: argparse.Namespace, request: dict[str, Any]) -> int:
    def render(client: Client) -> int:
        console.print(f"quote: ${client.quote(**request):.2f} USD", highlight=False)
        job = client.queue(**request)
        status = _wait(client, job, args.poll_interval)
        if status is None:
            return 130
        output = client.download(job, args.output or f"{job.queue_id}.mp4", status)
        console.print(f"saved {output} ({output.stat().st_size:,} bytes)")
        print(output, flush=True)
        return 0

    return run_with_client(args, render)


def _model(client: Client, model_id: str) -> dict[str, Any] | None:
    return next((m for m in client.models() if m["id"] == model_id), None)


def cmd_generate(args: argparse.Namespace) -> int:
    request: dict[str, Any] = {"model": args.model, "prompt": args.prompt}
    if args.seed is not None:
        request["seed"] = args.seed
    duration = args.duration
    if duration is None:
        # Venice's schema needs a duration: take the model's first.
        try:
            with _client(args) as client:
                entry = _model(client, args.model)
        except (VideoqueueError, httpx.TransportError) as error:
            console.print(f"[red]{error}[/]", soft_wrap=True)
            return 1
        if entry is None:
            console.print(f"[red]No model {args.model} at {args.base_url}[/]", soft_wrap=True)
            return 1
        duration = entry["model_spec"]["constraints"]["durations"][0]
    request["duration"] = duration
    for key in ("resolution", "aspect_ratio", "audio"):
        if getattr(args, key) is not None:
            request[key] = getattr(args, key)
    if args.image:
        request["image_url"] = args.image
    if args.end_image:
        request["end_image_url"] = args.end_image
    return _run(args, request)


def cmd_upscale(args: argparse.Namespace) -> int:
    model = args.model
    if model is None:
        try:
            with _client(args) as client:
                models = client.models()
        except (VideoqueueError, httpx.TransportError) as error:
            console.print(f"[red]{error}[/]", soft_wrap=True)
            return 1
        upscalers = [m["id"] for m in models if "upscale" in m["id"]]
        if not upscalers:
            console.print(f"[red]No upscale model at {args.base_url}; name one with -m[/]")
            return 1
        model = upscalers[0]
    request = {
        "model": model,
        "video_url": args.video,
        "upscale_factor": args.factor,
        "duration": "Auto",
    }
    return _run(args, request)


def server_options(parser: argparse.ArgumentParser) -> None:
    """`--base-url` and `--api-key`, from the environment by default."""
    parser.add_argument(
        "--base-url",
        default=os.environ.get("VIDEOQUEUE_BASE_URL", DEFAULT_BASE_URL),
        help=f"the API's base URL (default $VIDEOQUEUE_BASE_URL, else {DEFAULT_BASE_URL})",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("VIDEOQUEUE_API_KEY"),
        help="the API key (default $VIDEOQUEUE_API_KEY)",
    )


def _render_options(parser: argparse.ArgumentParser) -> None:
    server_options(parser)
    parser.add_argument("-o", "--output", type=Path, default=None, help="where to save the MP4")
    parser.add_argument(
        "--poll-interval", type=float, default=2.0, help="seconds between polls (default 2)"
    )


def add_client_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    generate = commands.add_parser(
        "generate", help="queue a video on a server, show its progress, save the MP4"
    )
    generate.add_argument("prompt")
    generate.add_argument("-m", "--model", required=True)
    generate.add_argument("--duration", help="e.g. 5s (default: the model's first)")
    generate.add_argument("--resolution", help="e.g. 720p")
    generate.add_argument("--aspect-ratio", dest="aspect_ratio", help="e.g. 16:9")
    generate.add_argument("--image", type=media_url, help="first frame: a file or a URL")
    generate.add_argument("--end-image", type=media_url, help="last frame: a file or a URL")
    generate.add_argument(
        "--audio", action=argparse.BooleanOptionalAction, default=None, help="sound on or off"
    )
    generate.add_argument(
        "--seed",
        type=int,
        help="the engine's seed (a videoqueue field: other servers ignore or refuse it; "
        "without it videoqueue derives one from the request)",
    )
    _render_options(generate)
    generate.set_defaults(func=cmd_generate)

    upscale = commands.add_parser("upscale", help="upscale a video on a server, save the MP4")
    upscale.add_argument("video", type=media_url, help="a file or a URL")
    upscale.add_argument(
        "-x", "--factor", type=int, choices=(1, 2, 4), default=2, help="1, 2 or 4 (default 2)"
    )
    upscale.add_argument(
        "-m", "--model", default=None, help="default: the server's first upscale model"
    )
    _render_options(upscale)
    upscale.set_defaults(func=cmd_upscale)
