"""How long a worker-like process waits for SQLite's write lock while an API-like process
writes back to back: with the writer gate (`db/writer_gate.py`: a `flock` turn before each
write transaction) against SQLite's own busy handler alone, alternating in one run.

The busy process runs `--writers` threads, each a loop of: a write transaction that holds
the lock for `--hold-ms` of CPU, then as much CPU outside it (the rest of a request). The
measured process runs one small write transaction every 3 ms (a worker's claims and
settlements) and times each, from its start to its commit.

    .venv/bin/python -m bench.writer_gate [--seconds 6] [--rounds 2] [--writers 1]
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from multiprocessing.synchronize import Event
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session

from videoqueue.db.dialect import make_engine
from videoqueue.db.session import Database

INSERT = text("INSERT INTO t (who) VALUES (:who)")

Transactions = Callable[[], AbstractContextManager[Session]]
"""Opens one write transaction."""


def _spin(seconds: float) -> None:
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


@contextmanager
def _ungated(url: str) -> Iterator[Transactions]:
    """Write transactions on the same engine, without the gate: SQLite's busy handler only."""
    engine = make_engine(url)

    @contextmanager
    def transaction() -> Iterator[Session]:
        with Session(engine) as session, session.begin():
            yield session

    yield transaction
    engine.dispose()


@contextmanager
def _gated(url: str) -> Iterator[Transactions]:
    db = Database(url)
    yield db.transaction
    db.dispose()


def _writers(kind: str) -> Callable[[str], AbstractContextManager[Transactions]]:
    return _gated if kind == "gate" else _ungated


def _busy(url: str, kind: str, writers: int, hold_s: float, stop: Event) -> None:
    with _writers(kind)(url) as transaction:

        def loop() -> None:
            while not stop.is_set():
                with transaction() as session:
                    session.execute(INSERT, {"who": "api"})
                    _spin(hold_s)
                _spin(hold_s)

        threads = [threading.Thread(target=loop) for _ in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def measure(kind: str, args: argparse.Namespace) -> list[float]:
    """Seconds each of the measured process's write transactions took."""
    with tempfile.TemporaryDirectory(prefix="vq-bench-") as folder:
        url = f"sqlite:///{Path(folder) / 'gate.db'}"
        with _gated(url) as transaction, transaction() as session:
            session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, who TEXT)"))
        spawn = multiprocessing.get_context("spawn")
        stop = spawn.Event()
        busy = spawn.Process(
            target=_busy, args=(url, kind, args.writers, args.hold_ms / 1000, stop)
        )
        busy.start()
        took: list[float] = []
        with _writers(kind)(url) as transaction:
            time.sleep(1.0)  # the busy process is writing
            deadline = time.monotonic() + args.seconds
            while time.monotonic() < deadline:
                started = time.perf_counter()
                with transaction() as session:
                    session.execute(INSERT, {"who": "worker"})
                took.append(time.perf_counter() - started)
                time.sleep(0.003)
        stop.set()
        busy.join()
    return took


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="seconds measured per run")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each, alternating")
    parser.add_argument("--writers", type=int, default=1, help="busy process's threads")
    parser.add_argument("--hold-ms", type=float, default=0.8, help="CPU ms a busy write holds")
    args = parser.parse_args()
    print(
        f"busy process: {args.writers} thread(s), {args.hold_ms:g} ms under the lock and "
        f"{args.hold_ms:g} ms outside; the other process's write transactions, "
        f"{args.seconds:g} s a run (ms)"
    )
    print(f"{'case':<22} {'writes':>7} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7}")
    p99: dict[str, list[float]] = {"busy handler": [], "gate": []}
    for _ in range(args.rounds):
        for kind in ("busy handler", "gate"):
            took = measure(kind, args)
            p99[kind].append(_quantile(took, 0.99))
            print(
                f"{kind:<22} {len(took):>7} {_quantile(took, 0.5):>7.2f} "
                f"{_quantile(took, 0.9):>7.2f} {p99[kind][-1]:>7.2f} {1000 * max(took):>7.1f}"
            )
    ratio = sum(p99["busy handler"]) / sum(p99["gate"])
    print(f"p99 wait, busy handler ÷ gate: {ratio:.1f}x")


if __name__ == "__main__":
    main()
