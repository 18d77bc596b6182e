"""How fast a real `videoqueue serve` accepts and dispatches jobs, against `/video/quote` on the
same server and a bare ASGI hello-world on the same stack (uvicorn + FastAPI), all in one run.

Each case starts `serve` on 127.0.0.1 over its own data dir (SQLite, or a fresh PostgreSQL
database), with the model bound to the `instant` fixture engine, which costs nothing, so what
is measured is the API, the database and the dispatch. 32 concurrent clients post for
`--duration` seconds: `wrk` connections (Debian's `wrk`, the default where it is installed;
a load generator in C leaves the two cores to the server) or httpx clients in this process
(`--load httpx`, which spend about a millisecond of CPU a request themselves, on the same
cores). Each wrk connection sends the next key in turn. "CPU ms" is what the server's
processes (API and workers, not the database server) spent per answered request, which other
work on the machine inflates less than it does the rates and latencies; "API CPU" is the API
process's share (with one API process). The queue runs twice: with the clients spread over
`--accounts` accounts, a key each (default: one per client, as a real load comes from many
accounts), and with every client on one account, whose charges all wait for that account's
row (the figure earlier runs measured). Queued-to-started times come from the job rows;
"idle" is one job at a time on an empty queue (the wake-up), "load" is the backlog a queue
phase built.

    .venv/bin/python -m bench.queue [--duration 5] [--clients 32] [--workers 1,4]
        [--databases sqlite,postgres] [--api-processes N] [--accounts N] [--load wrk|httpx]

Run it as a module from the repository root: `bench/queue.py` run as a file would shadow the
standard library's `queue` for everything it imports.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from tests.postgres import make_postgres_database, postgres_available
from videoqueue.auth.keys import create_key
from videoqueue.auth.models import KeyKind
from videoqueue.billing.ledger import create_account, top_up
from videoqueue.billing.models import AccountKind
from videoqueue.clock import SystemClock
from videoqueue.db.migrate import upgrade
from videoqueue.db.session import Database
from videoqueue.jobs.models import Job
from videoqueue.settings import Settings

REPO = Path(__file__).resolve().parents[1]
MODEL = "wan-2.5-preview-text-to-video"
QUEUE_BODY = {"model": MODEL, "prompt": "a kite", "duration": "5s", "resolution": "480p"}
QUOTE_BODY = {"model": MODEL, "duration": "5s", "resolution": "480p"}
IDLE_JOBS = 20


def hello_app() -> FastAPI:
    """The baseline: parse a JSON body, answer a JSON body, nothing else."""
    app = FastAPI()

    @app.post("/hello")
    async def hello(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "echo": len(await request.json())})

    return app


@dataclass
class Phase:
    """What one load phase saw from the clients' side."""

    seconds: float
    started: datetime
    """When the phase began (the jobs a queue phase created are those created since)."""
    answered: int = 0
    """Requests answered 200."""
    p50_s: float = float("nan")
    p99_s: float = float("nan")
    errors: int = 0
    cpu_s: tuple[float, float] = (float("nan"), float("nan"))
    """CPU seconds the server's first process and all its processes spent on this phase (a
    queue's: until its backlog has started)."""

    def cpu_ms(self, which: int) -> float:
        """Server CPU milliseconds per answered request (0: the first process, 1: all)."""
        if not self.answered:
            return float("nan")
        return 1000 * self.cpu_s[which] / self.answered

    @property
    def rate(self) -> float:
        return self.answered / self.seconds


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def _hammer(
    url: str, body: dict[str, Any], headers: list[dict[str, str]], clients: int, duration: float
) -> Phase:
    phase = Phase(seconds=duration, started=datetime.now(UTC))
    deadline = time.perf_counter() + duration
    latencies: list[float] = []

    async def one_client(headers: dict[str, str]) -> None:
        async with httpx.AsyncClient(headers=headers, timeout=60) as client:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await client.post(url, json=body)
                if response.status_code != 200:
                    phase.errors += 1
                    continue
                latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(one_client(headers[i % len(headers)]) for i in range(clients)))
    phase.answered = len(latencies)
    phase.p50_s, phase.p99_s = percentile(latencies, 50), percentile(latencies, 99)
    return phase


def hammer(
    url: str, body: dict[str, Any], headers: list[dict[str, str]], clients: int, duration: float
) -> Phase:
    """`clients` concurrent httpx clients posting `body` to `url` back to back for `duration`
    s, client i with `headers[i % len(headers)]`."""
    return asyncio.run(_hammer(url, body, headers, clients, duration))


WRK_SCRIPT = """wrk.method = "POST"
wrk.body = [[{body}]]
wrk.headers["Content-Type"] = "application/json"
local authorizations = {{{authorizations}}}
local sent = 0
request = function()
  sent = sent + 1
  if #authorizations > 0 then
    wrk.headers["Authorization"] = authorizations[sent % #authorizations + 1]
  end
  return wrk.format()
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{{"requests": %d, "non2xx": %d, "socket": %d, "p50_us": %d, "p99_us": %d}}\\n',
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def hammer_wrk(
    url: str, body: dict[str, Any], headers: list[dict[str, str]], clients: int, duration: float
) -> Phase:
    """`hammer`'s load from `wrk` (one thread, `clients` connections, each request with the
    next of `headers`' keys): a load generator in C, which leaves the cores to the server."""
    authorizations = ", ".join(json.dumps(h["Authorization"]) for h in headers if h)
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(WRK_SCRIPT.format(body=json.dumps(body), authorizations=authorizations))
        script.flush()
        phase = Phase(seconds=duration, started=datetime.now(UTC))
        command = ["wrk", "-t1", f"-c{clients}", f"-d{duration:g}s", "-s", script.name, url]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    summary = json.loads(out.strip().splitlines()[-1])
    phase.errors = summary["non2xx"] + summary["socket"]
    phase.answered = summary["requests"] - summary["non2xx"]
    phase.p50_s, phase.p99_s = summary["p50_us"] / 1e6, summary["p99_us"] / 1e6
    return phase


LOADS: dict[str, Callable[..., Phase]] = {"httpx": hammer, "wrk": hammer_wrk}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running(
    command: list[str], env: dict[str, str], log: Path, probe: str, clean: tuple[int, ...] = (0,)
) -> Iterator[int]:
    """A server process (its pid), up once `probe` answers; stopped with SIGTERM, on which it
    must exit with a `clean` code."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=out, cwd=REPO)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{command[2:4]} did not start:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(probe).status_code < 500:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        if code not in clean:
            print(f"  ! {command[2:4]} exited with {code}; see {log}", file=sys.stderr)


def cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU seconds used so far by `pid` alone, and by it and every process descended from it
    (Linux /proc)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # it ended meanwhile
        fields = stat[
            stat.rindex(")") + 2 :
        ].split()  # after the command name, which may hold spaces
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    tree, grew = {pid}, True
    while grew:
        found = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= found
        grew = bool(found)
    return times.get(pid, 0.0), sum(times.get(member, 0.0) for member in tree)


def settle(pid: int, idle_share: float = 0.1, timeout: float = 120.0) -> None:
    """Wait until `pid` and its descendants use less than `idle_share` of a core over half a
    second: the workers' engine children start in the background and would otherwise share
    the first phase's cores."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(0.5)
        if since(before, pid)[1] < idle_share * 0.5:
            return


def since(before: tuple[float, float], pid: int) -> tuple[float, float]:
    """What `cpu_seconds(pid)` has grown by since it was `before`."""
    after = cpu_seconds(pid)
    return after[0] - before[0], after[1] - before[1]


@dataclass(frozen=True)
class ScratchDatabase:
    """A database for one case: its URL and how to drop it."""

    url: str
    drop: Callable[[], None]


def make_database(kind: str, data_dir: Path) -> ScratchDatabase:
    if kind == "sqlite":
        return ScratchDatabase(f"sqlite:///{data_dir / 'videoqueue.db'}", lambda: None)
    return ScratchDatabase(*make_postgres_database())


def make_key(db: Database) -> str:
    """A funded account's inference key."""
    clock = SystemClock()
    with db.transaction() as session:
        account = create_account(session, kind=AccountKind.STANDARD, clock=clock)
        top_up(session, account_id=account.id, micros=10**15, clock=clock, note="bench")
        _, secret = create_key(session, account_id=account.id, clock=clock, kind=KeyKind.INFERENCE)
    return secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def started_delays(db: Database, since: datetime, wait_s: float) -> tuple[list[float], float, int]:
    """(queued-to-started seconds of each job queued since `since` that started within
    `wait_s`, its jobs/s, how many were queued)."""
    deadline = time.monotonic() + wait_s
    while True:
        with db.transaction() as session:
            rows = session.execute(
                select(Job.created_at, Job.started_at).where(Job.created_at >= since)
            ).all()
        started: list[tuple[datetime, datetime]] = [(c, s) for c, s in rows if s is not None]
        if len(started) == len(rows) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if not started:
        return [], 0.0, len(rows)
    delays = [(s - c).total_seconds() for c, s in started]
    span = (max(s for _, s in started) - min(c for c, _ in started)).total_seconds()
    return delays, len(started) / span if span > 0 else float("nan"), len(rows)


@dataclass
class QueueRun:
    """A `/video/queue` load phase from `accounts` accounts (a key each), and its dispatch."""

    accounts: int
    phase: Phase
    queued: int
    """Jobs the phase created (with those of requests still in flight when it ended)."""
    load_delays: list[float]
    """Queued-to-started seconds of each of them that started within `--drain` seconds."""
    dispatch_rate: float


@dataclass
class Case:
    """The figures of one `serve` configuration."""

    database: str
    workers: int
    quote: Phase
    queues: list[QueueRun]
    idle_delays: list[float]


def run_case(kind: str, workers: int, args: argparse.Namespace, tmp: Path) -> Case:
    load = LOADS[args.load]
    data = tmp / f"{kind}-{workers}"
    data.mkdir()
    database = make_database(kind, data)
    try:
        upgrade(database.url)
        db = Database(database.url)
        keys = [bearer(make_key(db)) for _ in range(max(args.accounts))]
        catalog = data / "catalog.toml"
        catalog.write_text(f'[models."{MODEL}"]\nengine = "instant"\n')
        port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "VIDEOQUEUE_DATA_DIR": str(data),
            "VIDEOQUEUE_DATABASE_URL": database.url,
            "VIDEOQUEUE_PORT": str(port),
            "VIDEOQUEUE_WORKERS": str(workers),
            "VIDEOQUEUE_API_PROCESSES": str(args.api_processes),
            "VIDEOQUEUE_CATALOG_PATH": str(catalog),
            "VIDEOQUEUE_ENGINES": json.dumps({"instant": "tests.engines.fixture_engines:Instant"}),
            "VIDEOQUEUE_QUEUE_REQUESTS_PER_MINUTE": str(10**9),
        }
        base = f"http://127.0.0.1:{port}/api/v1"
        command = [sys.executable, "-m", "videoqueue.cli", "serve"]
        with running(command, env, data / "serve.log", f"{base}/models") as pid:
            # Warm up: every API process answers, and the workers' engine children start.
            warm = hammer(f"{base}/video/queue", QUEUE_BODY, keys[:1], 2 * workers, 1.0)
            started_delays(db, warm.started, 30)
            settle(pid)
            idle_since = datetime.now(UTC)
            with httpx.Client(headers=keys[0]) as client:
                for _ in range(IDLE_JOBS):
                    posted = datetime.now(UTC)
                    client.post(f"{base}/video/queue", json=QUEUE_BODY).raise_for_status()
                    started_delays(db, posted, 10)
            idle_delays, _, _ = started_delays(db, idle_since, 10)
            cpu = cpu_seconds(pid)
            quote = load(f"{base}/video/quote", QUOTE_BODY, keys, args.clients, args.duration)
            quote.cpu_s = since(cpu, pid)
            queues = []
            for accounts in args.accounts:
                url = f"{base}/video/queue"
                cpu = cpu_seconds(pid)
                phase = load(url, QUEUE_BODY, keys[:accounts], args.clients, args.duration)
                # Each phase's backlog starts before the next phase begins.
                load_delays, rate, queued = started_delays(db, phase.started, args.drain)
                phase.cpu_s = since(cpu, pid)
                queues.append(QueueRun(accounts, phase, queued, load_delays, rate))
        db.dispose()
    finally:
        database.drop()
    return Case(kind, workers, quote, queues, idle_delays)


def run_hello(args: argparse.Namespace, tmp: Path) -> Phase:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.queue:hello_app",
        "--factory",
        "--workers",
        str(args.api_processes),
        "--port",
        str(port),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    url = f"http://127.0.0.1:{port}/hello"
    # A single uvicorn process exits with the SIGTERM it was stopped by.
    with running(command, env, tmp / "hello.log", url, clean=(0, -signal.SIGTERM)) as pid:
        cpu = cpu_seconds(pid)
        phase = LOADS[args.load](url, QUOTE_BODY, [{}], args.clients, args.duration)
        phase.cpu_s = since(cpu, pid)
        return phase


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}" if seconds == seconds else "-"


def report(hello: Phase, cases: list[Case], args: argparse.Namespace) -> None:
    print(
        f"{args.clients} {args.load} clients, {args.duration:g} s per phase, "
        f"{args.api_processes} API process(es), {os.cpu_count()} cores"
    )
    print(
        f"{'case':<48} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'/hello':>7} "
        f"{'CPU ms':>7} {'API CPU':>7}"
    )

    def row(name: str, phase: Phase) -> None:
        # With one API process it is serve's own process (workers are its children).
        api = f"{phase.cpu_ms(0):>7.2f}" if args.api_processes == 1 else f"{'-':>7}"
        print(
            f"{name:<48} {phase.rate:>7.0f} {ms(phase.p50_s):>7} "
            f"{ms(phase.p99_s):>7} {phase.errors:>6} {phase.rate / hello.rate:>7.2f} "
            f"{phase.cpu_ms(1):>7.2f} {api}"
        )

    def name(case: Case) -> str:
        return f"{case.database}, {case.workers} worker(s)"

    row("baseline: hello-world", hello)
    for case in cases:
        row(f"{name(case)}: /video/quote", case.quote)
        for run in case.queues:
            row(f"{name(case)}: /video/queue, {run.accounts} account(s)", run.phase)
    print()
    print(
        f"{'dispatch':<40} {'queue/quote':>11} {'jobs/s':>7} {'started':>9} "
        f"{'load p50':>8} {'load p99':>8} {'idle p50':>8} {'idle p99':>8}  (ms)"
    )
    for case in cases:
        for run in case.queues:
            started = f"{len(run.load_delays)}/{run.queued}"
            print(
                f"{name(case) + ', ' + str(run.accounts) + ' account(s)':<40} "
                f"{run.phase.rate / case.quote.rate:>11.2f} {run.dispatch_rate:>7.0f} "
                f"{started:>9} {ms(percentile(run.load_delays, 50)):>8} "
                f"{ms(percentile(run.load_delays, 99)):>8} "
                f"{ms(percentile(case.idle_delays, 50)):>8} "
                f"{ms(percentile(case.idle_delays, 99)):>8}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per load phase")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients")
    parser.add_argument(
        "--load",
        choices=sorted(LOADS),
        default="wrk" if shutil.which("wrk") else "httpx",
        help="the load generator: wrk (default where installed) or httpx clients in this process",
    )
    parser.add_argument("--workers", default="1,4", help="worker counts, comma-separated")
    parser.add_argument("--databases", default="sqlite,postgres", help="sqlite and/or postgres")
    parser.add_argument(
        "--api-processes",
        type=int,
        default=Settings().resolved_api_processes,
        help="API processes of serve and of the hello-world (default: serve's with one worker)",
    )
    parser.add_argument(
        "--drain", type=float, default=10.0, help="longest wait for the backlog to start"
    )
    parser.add_argument(
        "--accounts",
        type=int,
        default=None,
        help="accounts (a key each) the queue clients are spread over, round robin (default: "
        "one per client); a phase with every client on one account runs too, as a baseline",
    )
    args = parser.parse_args()
    args.accounts = sorted({1, args.accounts or args.clients})
    kinds = args.databases.split(",")
    if "postgres" in kinds and not postgres_available():
        print("PostgreSQL is not running at 127.0.0.1:5432; SQLite only", file=sys.stderr)
        kinds.remove("postgres")
    with tempfile.TemporaryDirectory(prefix="vq-bench-") as tmp:
        hello = run_hello(args, Path(tmp))
        cases = [
            run_case(kind, int(workers), args, Path(tmp))
            for kind in kinds
            for workers in args.workers.split(",")
        ]
    report(hello, cases, args)


if __name__ == "__main__":
    main()
