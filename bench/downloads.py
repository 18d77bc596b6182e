"""How fast a real `videoqueue serve` sends a finished MP4, alone and behind nginx with
`file_offload = "x-accel-redirect"`, against nginx serving the same file, all in one run.

One nginx (Debian's `/usr/sbin/nginx`, run with its own config in a temporary folder) serves
the media dir as static files (the baseline) and proxies `/api/` to videoqueue with an
`internal` location for the X-Accel-Redirect answers. `serve` runs with no worker over a
SQLite data dir holding one job, queued over HTTP and then finished by hand with a
`--size-mib` file of random bytes as its MP4. `wrk` (Debian's package) posts
`/video/retrieve` (or GETs the static file) from `--clients` connections for `--duration`
seconds. "CPU s/GB" is what the server's processes spent per GB sent: videoqueue's API process
and nginx's master and workers, each counted from /proc.

    .venv/bin/python -m bench.downloads [--size-mib 64] [--clients 4] [--duration 5]
        [--repeat 3]

Run it as a module from the repository root (it reuses `bench.queue`'s process helpers).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from statistics import median_low

import httpx
from bench.queue import bearer, cpu_seconds, free_port, make_key, running

from videoqueue.db.migrate import upgrade
from videoqueue.db.session import Database
from videoqueue.jobs.models import Job
from videoqueue.jobs.states import JobState
from videoqueue.storage.layout import output_key
from videoqueue.storage.local import LocalStorage

MODEL = "wan-2.5-preview-text-to-video"
NGINX = "/usr/sbin/nginx"
INTERNAL = "/_videoqueue/media/"

NGINX_CONF = """daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    sendfile on;
    tcp_nopush on;
    upstream videoqueue {{ server 127.0.0.1:{upstream}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{port};
        location /static/ {{ alias {media}/; types {{ }} default_type video/mp4; }}
        location / {{
            proxy_pass http://videoqueue;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
        location {internal} {{
            internal;
            alias {media}/;
            types {{ }}
            default_type video/mp4;
            add_header Referrer-Policy $upstream_http_referrer_policy;
            add_header X-Request-Id $upstream_http_x_request_id;
        }}
    }}
}}
"""

WRK_SCRIPT = """wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "{authorization}"
"""


@dataclass(frozen=True)
class Target:
    """One way of fetching the file: its URL, the wrk script that posts to it, who serves it."""

    name: str
    url: str
    script: Path | None
    pids: dict[str, int]
    """The server processes whose CPU is counted, by name (each with its descendants)."""


@dataclass(frozen=True)
class Run:
    mb_per_s: float
    requests_per_s: float
    cpu_s_per_gb: dict[str, float]
    failures: int


def _bytes(amount: str, unit: str) -> float:
    return float(amount) * {"B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30, "TB": 2**40}[unit]


def measure(target: Target, clients: int, duration: int) -> Run:
    """`clients` wrk connections on `target` for `duration` s: MB/s and server CPU per GB."""
    command = ["wrk", f"-t{min(clients, 2)}", f"-c{clients}", f"-d{duration}s", target.url]
    if target.script is not None:
        command[1:1] = ["-s", str(target.script)]
    before = {name: cpu_seconds(pid)[1] for name, pid in target.pids.items()}
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    after = {name: cpu_seconds(pid)[1] for name, pid in target.pids.items()}
    found = re.search(r"(\d+) requests in ([\d.]+)(m?s), ([\d.]+)([KMGT]?B) read", out)
    if found is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    seconds = float(found[2]) / (1000 if found[3] == "ms" else 1)
    sent = _bytes(found[4], found[5])
    failures = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    gigabytes = sent / 1e9
    cpu = {name: (after[name] - before[name]) / gigabytes for name in target.pids}
    return Run(
        sent / seconds / 1e6, int(found[1]) / seconds, cpu, int(failures[1]) if failures else 0
    )


def check_bytes(target: Target, expected: str, headers: dict[str, str], body: str) -> None:
    """One fetch of `target` must give the file's exact bytes."""
    digest = hashlib.sha256()
    method = "GET" if target.script is None else "POST"
    with httpx.stream(method, target.url, headers=headers, content=body, timeout=60) as answer:
        answer.raise_for_status()
        for chunk in answer.iter_bytes():
            digest.update(chunk)
    if digest.hexdigest() != expected:
        raise RuntimeError(f"{target.name}: the bytes differ from the file")


def finished_job(base: str, key: str, db: Database, media: Path, size: int) -> tuple[str, str]:
    """A job queued at `base`, finished by hand with `size` random bytes: (id, their sha256)."""
    body = {"model": MODEL, "prompt": "a kite", "duration": "5s", "resolution": "480p"}
    queued = httpx.post(f"{base}/video/queue", json=body, headers=bearer(key), timeout=60)
    queued.raise_for_status()
    job_id = str(queued.json()["queue_id"])
    data = os.urandom(size)
    LocalStorage(media).put_bytes(output_key(job_id), data)
    with db.transaction() as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.state, job.output_key = JobState.COMPLETED, output_key(job_id)
    return job_id, hashlib.sha256(data).hexdigest()


def serve_env(data: Path, port: int, offload: str, src: str | None) -> dict[str, str]:
    env = {
        **os.environ,
        "VIDEOQUEUE_DATA_DIR": str(data),
        "VIDEOQUEUE_PORT": str(port),
        "VIDEOQUEUE_WORKERS": "0",
        "VIDEOQUEUE_API_PROCESSES": "1",
        "VIDEOQUEUE_RETRIEVE_REQUESTS_PER_MINUTE": str(10**9),
        "VIDEOQUEUE_FILE_OFFLOAD": offload,
        "VIDEOQUEUE_FILE_OFFLOAD_PREFIX": INTERNAL,
    }
    if src is not None:
        env["PYTHONPATH"] = src
    return env


@dataclass(frozen=True)
class Case:
    """One `serve` configuration and where its clients fetch from."""

    name: str
    offload: str
    proxied: bool
    src: str | None = None
    """A PYTHONPATH to run `serve` from instead of this checkout."""


@dataclass
class Rows:
    """Each case's runs, beside the nginx run just before each (its baseline)."""

    runs: dict[str, list[tuple[Run, Run]]]

    def print(self, args: argparse.Namespace) -> None:
        print(
            f"\n{args.size_mib} MiB file, {args.clients} connections, {args.duration} s a run, "
            f"{args.repeat} runs a case, each after an nginx run; MB/s and requests/s: the "
            "best run; ÷ nginx and CPU: the median run"
        )
        print("| case | MB/s | nginx MB/s | ÷ nginx | requests/s | CPU s/GB |")
        print("|---|---|---|---|---|---|")
        for name, pairs in self.runs.items():
            ratio = median_low(run.mb_per_s / nginx.mb_per_s for nginx, run in pairs)
            by_rate = sorted((run for _, run in pairs), key=lambda run: run.mb_per_s)
            median = by_rate[len(by_rate) // 2]
            cpu = ", ".join(f"{who} {s:.3f}" for who, s in median.cpu_s_per_gb.items())
            nginx_cpu = median_low(nginx.cpu_s_per_gb["nginx"] for nginx, _ in pairs)
            failed = sum(run.failures for _, run in pairs)
            note = f" ({failed} non-2xx)" if failed else ""
            print(
                f"| {name}{note} | {by_rate[-1].mb_per_s:.0f} "
                f"| {max(nginx.mb_per_s for nginx, _ in pairs):.0f} "
                f"| {ratio:.2f} "
                f"| {max(run.requests_per_s for run in by_rate):.1f} "
                f"| {cpu} (nginx alone {nginx_cpu:.3f}) |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=64, help="the MP4's size")
    parser.add_argument("--clients", type=int, default=4, help="concurrent wrk connections")
    parser.add_argument("--duration", type=int, default=5, help="seconds per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each case")
    parser.add_argument(
        "--before",
        default=None,
        help="also serve alone from this PYTHONPATH (another commit's src, from `git archive`)",
    )
    args = parser.parse_args()
    for tool in (NGINX, "wrk"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing: apt-get install nginx-light wrk")
    cases = [
        Case("videoqueue alone", "none", proxied=False),
        Case("videoqueue behind nginx, x-accel-redirect", "x-accel-redirect", proxied=True),
    ]
    if args.before is not None:
        cases.append(Case(f"videoqueue alone, {args.before}", "none", False, args.before))
    with tempfile.TemporaryDirectory(prefix="videoqueue-bench-") as folder:
        run_cases(cases, Path(folder), args).print(args)


def run_cases(cases: list[Case], tmp: Path, args: argparse.Namespace) -> Rows:
    tmp.chmod(0o755)  # nginx's workers run as another user when started by root
    data, media = tmp / "data", tmp / "data" / "media"
    media.mkdir(parents=True)
    url = f"sqlite:///{data / 'videoqueue.db'}"
    upgrade(url)
    db = Database(url)
    key = make_key(db)
    port, upstream = free_port(), free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(tmp=tmp, port=port, upstream=upstream, media=media, internal=INTERNAL)
    )
    base = f"http://127.0.0.1:{upstream}/api/v1"
    serve = [sys.executable, "-m", "videoqueue.cli", "serve"]
    with running(serve, serve_env(data, upstream, "none", None), tmp / "serve.log", base):
        job_id, digest = finished_job(base, key, db, media, args.size_mib << 20)
    db.dispose()
    body = json.dumps({"model": MODEL, "queue_id": job_id})
    script = tmp / "retrieve.lua"
    script.write_text(WRK_SCRIPT.format(body=body, authorization=f"Bearer {key}"))
    headers = {**bearer(key), "Content-Type": "application/json"}
    static = f"http://127.0.0.1:{port}/static/{output_key(job_id)}"
    rows = Rows({})
    nginx_command = [NGINX, "-c", str(conf), "-p", str(tmp)]
    with running(nginx_command, dict(os.environ), tmp / "nginx.log", static) as nginx_pid:
        nginx = Target("nginx", static, None, {"nginx": nginx_pid})
        for number, case in enumerate(cases):
            env = serve_env(data, upstream, case.offload, case.src)
            with running(serve, env, tmp / f"serve-{number}.log", base) as pid:
                if case.proxied:
                    retrieve = f"http://127.0.0.1:{port}/api/v1/video/retrieve"
                    target = Target(case.name, retrieve, script, {"vq": pid, "nginx": nginx_pid})
                else:
                    target = Target(case.name, f"{base}/video/retrieve", script, {"vq": pid})
                check_bytes(target, digest, headers, body)
                for _ in range(args.repeat):
                    baseline = measure(nginx, args.clients, args.duration)
                    run = measure(target, args.clients, args.duration)
                    rows.runs.setdefault(case.name, []).append((baseline, run))
    return rows


if __name__ == "__main__":
    main()
