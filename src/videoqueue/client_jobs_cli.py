"""`videoqueue jobs list|show|cancel`: the account's jobs on a videoqueue server, through the
SDK's `/video/jobs` (a page), `/video/jobs/{queue_id}` (one job: `show`, and `cancel` to learn
its model) and `/video/cancel` (a Venice server has none of them, and says so)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.prompt import Confirm
from rich.table import Table

from videoqueue.client import Client, JobSummary
from videoqueue.client_cli import console, run_with_client, server_options


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")


def _state(job: JobSummary) -> str:
    state = job.status.lower()
    if job.queue_position is not None:
        state += f" (position {job.queue_position})"
    if job.failure is not None:
        state += f" ({job.failure.kind})"
    return state


def _as_json(job: JobSummary) -> dict[str, Any]:
    return dataclasses.asdict(job)


def _print_json(value: Any) -> None:
    print(json.dumps(value, default=lambda moment: moment.isoformat(), indent=2), flush=True)


def cmd_jobs_list(args: argparse.Namespace) -> int:
    def listing(client: Client) -> int:
        if args.all:
            jobs = list(client.iter_jobs(args.state, args.model, args.limit))
            cursor = None
        else:
            page = client.jobs(args.state, args.model, args.limit, args.cursor)
            jobs, cursor = list(page.items), page.next_cursor
        if args.json:
            _print_json({"data": [_as_json(job) for job in jobs], "next_cursor": cursor})
            return 0
        table = Table("queue id", "model", "state", "progress", "created", "finished")
        for job in jobs:
            table.add_row(
                job.queue_id,
                job.model,
                _state(job),
                f"{job.progress:.0%}",
                _when(job.created_at),
                _when(job.finished_at),
            )
        Console().print(table)
        if cursor is not None:
            console.print(f"more jobs: --all, or --cursor {cursor}", soft_wrap=True)
        return 0

    return run_with_client(args, listing)


def cmd_jobs_show(args: argparse.Namespace) -> int:
    def showing(client: Client) -> int:
        job = client.job(args.queue_id)
        if args.json:
            _print_json(_as_json(job))
            return 0
        failure = "-"
        if job.failure is not None:
            refunded = "refunded" if job.failure.refunded else "not refunded"
            failure = f"{job.failure.kind}: {job.failure.message} ({refunded})"
        fields = {
            "queue id": job.queue_id,
            "model": job.model,
            "state": job.status.lower(),
            "progress": f"{job.progress:.0%}",
            "queue position": "-" if job.queue_position is None else str(job.queue_position),
            "created": _when(job.created_at),
            "started": _when(job.started_at),
            "finished": _when(job.finished_at),
            "failure": failure,
        }
        grid = Table.grid(padding=(0, 2))
        for name, value in fields.items():
            grid.add_row(name, value)
        Console().print(grid)
        return 0

    return run_with_client(args, showing)


def cmd_jobs_cancel(args: argparse.Namespace) -> int:
    def cancelling(client: Client) -> int:
        job = client.job(args.queue_id)
        asked = f"Cancel {job.model} job {job.queue_id} ({_state(job)})?"
        if not args.yes and not Confirm.ask(asked, console=console, default=False):
            console.print(f"job {job.queue_id} not cancelled", soft_wrap=True)
            return 1
        client.cancel(job.queue_id, job.model)
        console.print(f"job {job.queue_id} cancelled", soft_wrap=True)
        return 0

    return run_with_client(args, cancelling)


def add_jobs_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    jobs = commands.add_parser("jobs", help="list, show or cancel your jobs on a videoqueue server")
    jobs_commands = jobs.add_subparsers(dest="jobs_command", required=True)

    listing = jobs_commands.add_parser("list", help="your jobs, newest first")
    listing.add_argument(
        "--state",
        help="queued, running, completed, failed, cancelled or processing (several: a,b)",
    )
    listing.add_argument("--model", help="only this model's jobs")
    listing.add_argument("--limit", type=int, help="jobs a page (1-100, default 20)")
    listing.add_argument("--cursor", help="read on from a page's next cursor")
    listing.add_argument("--all", action="store_true", help="every page, not just the first")
    listing.add_argument("--json", action="store_true", help="JSON on stdout, not a table")
    server_options(listing)
    listing.set_defaults(func=cmd_jobs_list)

    show = jobs_commands.add_parser("show", help="one job: state, progress, times, failure")
    show.add_argument("queue_id")
    show.add_argument("--json", action="store_true", help="JSON on stdout")
    server_options(show)
    show.set_defaults(func=cmd_jobs_show)

    cancel = jobs_commands.add_parser("cancel", help="cancel a queued or running job")
    cancel.add_argument("queue_id")
    cancel.add_argument("--yes", action="store_true", help="do not ask first")
    server_options(cancel)
    cancel.set_defaults(func=cmd_jobs_cancel)
