"""The `videoqueue` command: serve, run workers, manage keys, credit accounts, check the books;
and, as a client of a server, generate and upscale videos.

Each command imports what it needs when it runs: every process `serve` or `worker` spawns
(workers, their engines' children, API processes) imports this module again first, as its
`__mp_main__`, and an engine's child has no use for the database layer or the settings.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from videoqueue.clock import SystemClock

if TYPE_CHECKING:
    from videoqueue.db.session import Database
    from videoqueue.settings import Settings

console = Console(stderr=True)


def _settings(args: argparse.Namespace) -> Settings:
    from videoqueue.settings import Settings

    overrides = {k: getattr(args, k, None) for k in ("data_dir", "host", "port")}
    if getattr(args, "no_worker", False):
        overrides["workers"] = 0
    settings = Settings.load(getattr(args, "config", None), **overrides)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings


def _prepare(settings: Settings) -> Database:
    """Migrate the database to the newest schema and return a handle on it."""
    from videoqueue.db.migrate import upgrade
    from videoqueue.db.session import Database

    upgrade(settings.resolved_database_url)
    return Database(settings.resolved_database_url)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def cmd_serve(args: argparse.Namespace) -> int:
    from videoqueue.api.serving import serve_api
    from videoqueue.auth.bootstrap import ensure_operator
    from videoqueue.metrics_folder import use_metrics_dir

    # SIGTERM stops serve the way Ctrl-C does. Its default action would end this process the
    # moment uvicorn, having shut the API down, raises it again: before the workers stop.
    signal.signal(signal.SIGTERM, _interrupt)
    settings = _settings(args)
    # Before prometheus-client is imported here (one API process runs in this one).
    use_metrics_dir(settings.data_dir, clean=True)
    from videoqueue.workers import Supervisor

    db = _prepare(settings)
    with db.transaction() as session:
        secret = ensure_operator(session, SystemClock())
    db.dispose()
    if secret:
        console.print("[bold green]Created the operator's admin API key (shown only once):[/]")
        print(secret, flush=True)
    processes = settings.resolved_api_processes
    supervisor = Supervisor(settings, settings.workers)
    try:
        supervisor.start()
        console.print(
            f"videoqueue: API on http://{settings.host}:{settings.port}/api/v1 "
            f"({processes} process(es)), {settings.workers} worker(s), "
            f"data in {settings.data_dir.resolve()}"
        )
        if settings.public_base_url is None and settings.host in ("0.0.0.0", "::", ""):
            console.print(
                "[yellow]Private models' download links will point at "
                f"{settings.resolved_public_base_url}; set VIDEOQUEUE_PUBLIC_BASE_URL to "
                "the address clients use.[/]"
            )
        serve_api(settings, processes)
    except KeyboardInterrupt:
        pass
    finally:
        # A second signal must not cut the stop short and leave workers behind.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        supervisor.stop()
    console.print("videoqueue: stopped")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from videoqueue.engines.registry import engine_factories
    from videoqueue.metrics_folder import METRICS_DIR, use_metrics_dir
    from videoqueue.workers import worker_main

    settings = _settings(args)
    if (settings.data_dir / METRICS_DIR).is_dir():  # a serve on this machine reads them
        use_metrics_dir(settings.data_dir, clean=False)
    factories = engine_factories(settings.engines)
    unknown = [name for name in args.engine if name not in factories]
    if unknown:
        console.print(
            f"[red]No engine named {', '.join(unknown)}; known: {', '.join(sorted(factories))}[/]"
        )
        return 2
    _prepare(settings)
    worker_main(settings.model_dump(mode="json"), engines=args.engine, device=args.device)
    return 0


def cmd_keys_create(args: argparse.Namespace) -> int:
    from videoqueue.auth.keys import create_key
    from videoqueue.auth.models import KeyKind
    from videoqueue.billing.ledger import create_account
    from videoqueue.billing.models import Account, AccountKind, LimitPeriod

    settings = _settings(args)
    db = _prepare(settings)
    clock = SystemClock()
    with db.transaction() as session:
        if args.account:
            if session.get(Account, args.account) is None:
                console.print(f"[red]No account {args.account}[/]")
                return 1
            account_id = args.account
        else:
            account_id = create_account(
                session, kind=AccountKind.STANDARD, clock=clock, name=args.name or ""
            ).id
        kind = KeyKind.ADMIN if args.admin else KeyKind.INFERENCE
        key, secret = create_key(
            session,
            account_id=account_id,
            kind=kind,
            clock=clock,
            name=args.name or "",
            expires_at=args.expires,
            usd_limit_micros=args.limit_usd,
            limit_period=LimitPeriod[LIMIT_PERIODS[args.limit_period]],
        )
    console.print(f"{kind} key {key.id} for account {account_id} (shown only once):")
    print(secret, flush=True)
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    from videoqueue.auth.keys import list_keys
    from videoqueue.billing.models import usd_text

    db = _prepare(_settings(args))
    with db.transaction() as session:
        keys = list_keys(session, account_id=args.account, include_revoked=args.all)
    # Tab-separated, whole ids: meant to be read, copied and piped.
    print("id\taccount\ttype\tname\tends with\tcreated\texpires\tUSD limit\trevoked")
    for key in keys:
        limit = (
            ""
            if key.usd_limit_micros is None
            else (f"{usd_text(key.usd_limit_micros, 2)}/{key.limit_period.value}")
        )
        print(
            "\t".join(
                (
                    key.id,
                    key.account_id,
                    key.kind.value,
                    key.name,
                    key.last_chars,
                    _when(key.created_at),
                    _when(key.expires_at),
                    limit,
                    _when(key.revoked_at),
                )
            )
        )
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from videoqueue.auth.keys import revoke_key

    db = _prepare(_settings(args))
    with db.transaction() as session:
        revoked = revoke_key(session, args.key_id, SystemClock())
    if not revoked:
        console.print(f"[red]No live key {args.key_id}[/]")
        return 1
    console.print(f"key {args.key_id} revoked")
    return 0


def cmd_credit(args: argparse.Namespace) -> int:
    from videoqueue.auth.keys import find_key
    from videoqueue.billing.ledger import InsufficientBalance, adjust, lock_account, top_up
    from videoqueue.billing.models import Account, usd_text

    db = _prepare(_settings(args))
    clock = SystemClock()
    with db.transaction() as session:
        account_id = args.account
        if args.key:
            key = find_key(session, args.key)
            account_id = key.account_id if key else None
        if account_id is None or session.get(Account, account_id) is None:
            console.print(f"[red]No account for {args.key or args.account}[/]")
            return 1
        note = args.note or "credited by the operator"
        try:
            if args.amount > 0:
                top_up(session, account_id=account_id, micros=args.amount, clock=clock, note=note)
            else:
                adjust(session, account_id=account_id, micros=args.amount, clock=clock, note=note)
        except InsufficientBalance:
            console.print("[red]That would take the balance below zero[/]")
            return 1
        balance = lock_account(session, account_id).balance_micros
    console.print(
        f"account {account_id}: {usd_text(args.amount, 2)} USD, "
        f"balance now {usd_text(balance, 2)} USD",
        soft_wrap=True,
    )
    return 0


def cmd_ledger_verify(args: argparse.Namespace) -> int:
    from videoqueue.billing.ledger import verify_ledger
    from videoqueue.billing.models import usd_text

    db = _prepare(_settings(args))
    with db.transaction() as session:
        report = verify_ledger(session)
    for m in report.mismatches:
        console.print(
            f"[red]account {m.account_id}: balance {usd_text(m.balance_micros, 6)} USD, "
            f"ledger sums to {usd_text(m.ledger_micros, 6)} USD[/]",
            soft_wrap=True,
        )
    for entry_id in report.bad_refunds:
        console.print(
            f"[red]refund {entry_id} does not return exactly one charge[/]", soft_wrap=True
        )
    verdict = "consistent" if report.consistent else "[red]INCONSISTENT[/]"
    console.print(f"{report.accounts} accounts, {report.entries} ledger entries: {verdict}")
    return 0 if report.consistent else 1


def cmd_storage_check(args: argparse.Namespace) -> int:
    from videoqueue.jobs.storage_check import delete_unowned, unowned_objects
    from videoqueue.media.rules import megabytes
    from videoqueue.storage.factory import storage_from_url

    settings = _settings(args)
    db = _prepare(settings)
    storage = storage_from_url(settings.resolved_storage_url, settings.s3_config())
    found = unowned_objects(db, storage, now=SystemClock().now(), grace=args.grace_minutes)
    if not found:
        console.print("storage is clean: every object belongs to a job")
        return 0
    # Tab-separated, whole keys: meant to be read and piped.
    print("bytes\tkey\twhy")
    for unowned in found:
        print(f"{unowned.size}\t{unowned.key}\t{unowned.why}")
    total = sum(unowned.size for unowned in found)
    jobs = len({unowned.job_id for unowned in found})
    console.print(
        f"{len(found)} object(s) of {jobs} job(s) that no job owns: "
        f"{total} bytes ({megabytes(total)})"
    )
    if not args.delete:
        console.print("run again with --delete to remove them")
        return 1
    deleted = delete_unowned(db, storage, found)
    console.print(f"deleted the objects of {deleted} job(s)")
    return 0


def cmd_workers(args: argparse.Namespace) -> int:
    from rich.table import Table

    from videoqueue.fleet.views import fleet_views
    from videoqueue.workers import fleet_terms

    settings = _settings(args)
    db = _prepare(settings)
    with db.read() as session:
        views = fleet_views(
            session,
            now=SystemClock().now(),
            lost_after_seconds=fleet_terms(settings).lost_after_seconds,
        )
    if args.json:
        print(json.dumps([view.to_json() for view in views], indent=2))
        return 0
    table = Table(title=f"{len(views)} worker(s)")
    for column in ("id", "state", "engines", "device", "job", "started", "heartbeat"):
        table.add_column(column)
    for view in views:
        table.add_row(
            view.id,
            view.state.value,
            "\n".join(f"{name}: {state}" for name, state in view.engines.items()),
            view.device or "",
            view.current_job_id or "",
            _when(view.started_at),
            f"{view.heartbeat_age_seconds:g} s ago",
        )
    Console().print(table)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _prepare(settings)
    console.print(f"database at {settings.resolved_database_url} is up to date")
    return 0


def cmd_settings(args: argparse.Namespace) -> int:
    from videoqueue.settings import Settings, settings_markdown

    if args.markdown:
        print(settings_markdown(), end="")
        return 0
    settings = Settings.load(args.config)
    secrets = {name for name, field in Settings.model_fields.items() if not field.repr}
    for name, value in settings.model_dump(mode="json").items():
        shown = "(set, hidden)" if name in secrets and value else value
        print(f"{name} = {shown!r}" if isinstance(shown, str) else f"{name} = {shown}")
    return 0


LIMIT_PERIODS = {"daily": "EPOCH", "monthly": "MONTH", "lifetime": "LIFETIME"}
"""`--limit-period`'s choices, each with the name of its `LimitPeriod`."""


def _micros(text: str) -> int:
    """A USD amount given on the command line, in micro-USD."""
    from videoqueue.billing.models import MICROS_PER_USD

    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not an amount of USD: {text!r}") from None
    if not amount.is_finite() or amount == 0:
        raise argparse.ArgumentTypeError(f"not an amount of USD: {text!r}")
    return int((amount * MICROS_PER_USD).to_integral_value(ROUND_HALF_UP))


def _minutes(text: str) -> timedelta:
    try:
        minutes = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of minutes: {text!r}") from None
    if not 0 <= minutes < 10**9:  # NaN fails both
        raise argparse.ArgumentTypeError(f"not a number of minutes: {text!r}")
    return timedelta(minutes=minutes)


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date or time: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _when(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the database and media live (default ./videoqueue-data, "
        "or $VIDEOQUEUE_DATA_DIR)",
    )
    parser.add_argument("--config", type=Path, default=None, help="a settings TOML file")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="videoqueue", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the API and a worker")
    _common(serve)
    serve.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="listen port (default 8000)")
    serve.add_argument(
        "--no-worker",
        action="store_true",
        help="run the API only (workers = 0): jobs wait for `videoqueue worker` processes",
    )
    serve.set_defaults(func=cmd_serve)

    worker = commands.add_parser("worker", help="run a worker only (scale-out)")
    _common(worker)
    worker.add_argument(
        "--engine",
        action="append",
        default=[],
        metavar="NAME",
        help="set up and claim jobs only for this engine (repeatable; default: every engine "
        "the catalogue binds a model to)",
    )
    worker.add_argument(
        "--device",
        default=None,
        help="the device of engines that take one, e.g. cuda:1 (the diffusers engine); "
        "it replaces the device in their factory strings",
    )
    worker.set_defaults(func=cmd_worker)

    fleet = commands.add_parser(
        "workers", help="list the registered workers: engines, current job, last heartbeat"
    )
    _common(fleet)
    fleet.add_argument("--json", action="store_true", help="print JSON instead of a table")
    fleet.set_defaults(func=cmd_workers)

    migrate = commands.add_parser("migrate", help="create or upgrade the database schema")
    _common(migrate)
    migrate.set_defaults(func=cmd_migrate)

    settings = commands.add_parser(
        "settings", help="print the settings in effect (environment and --config)"
    )
    settings.add_argument("--config", type=Path, default=None, help="a settings TOML file")
    settings.add_argument(
        "--markdown", action="store_true", help="print the reference of every setting instead"
    )
    settings.set_defaults(func=cmd_settings)

    keys = commands.add_parser("keys", help="manage API keys")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_commands.add_parser("create", help="create a key and print it once")
    _common(create)
    create.add_argument("--name", default=None)
    create.add_argument("--admin", action="store_true", help="an ADMIN key (default INFERENCE)")
    create.add_argument(
        "--account", default=None, help="an existing account id (default: a new account)"
    )
    create.add_argument(
        "--expires",
        type=_moment,
        default=None,
        help="expiry, YYYY-MM-DD or an ISO 8601 time (default: never)",
    )
    create.add_argument(
        "--limit-usd",
        type=_micros,
        default=None,
        help="most the key may spend per period (default: no limit)",
    )
    create.add_argument(
        "--limit-period",
        choices=sorted(LIMIT_PERIODS),
        default="daily",
        help="the period --limit-usd counts over (default daily, UTC)",
    )
    create.set_defaults(func=cmd_keys_create)
    listing = keys_commands.add_parser("list", help="list keys (never their secrets)")
    _common(listing)
    listing.add_argument("--account", default=None, help="only this account's keys")
    listing.add_argument("--all", action="store_true", help="include revoked keys")
    listing.set_defaults(func=cmd_keys_list)
    revoke = keys_commands.add_parser("revoke", help="revoke a key at once")
    _common(revoke)
    revoke.add_argument("key_id")
    revoke.set_defaults(func=cmd_keys_revoke)

    credit = commands.add_parser("credit", help="add USD to an account (negative: deduct)")
    _common(credit)
    payer = credit.add_mutually_exclusive_group(required=True)
    payer.add_argument("--key", help="the account of this key (its id or its secret)")
    payer.add_argument("--account", help="an account id")
    credit.add_argument("amount", type=_micros, metavar="AMOUNT_USD")
    credit.add_argument("--note", default=None, help="written on the ledger row")
    credit.set_defaults(func=cmd_credit)

    ledger = commands.add_parser("ledger", help="check the books")
    ledger_commands = ledger.add_subparsers(dest="ledger_command", required=True)
    verify = ledger_commands.add_parser(
        "verify", help="check every balance against its ledger (exit status 1 if any differs)"
    )
    _common(verify)
    verify.set_defaults(func=cmd_ledger_verify)

    storage = commands.add_parser("storage", help="check the stored media")
    storage_commands = storage.add_subparsers(dest="storage_command", required=True)
    check = storage_commands.add_parser(
        "check",
        help="list stored objects that no job owns, with their sizes (exit status 1 if any "
        "is found and not deleted)",
    )
    _common(check)
    check.add_argument("--delete", action="store_true", help="delete the objects listed")
    check.add_argument(
        "--grace-minutes",
        type=_minutes,
        default=timedelta(minutes=60),
        help="objects of a job id with no job count only once older than this (default 60): "
        "a queue request stores its inputs a moment before it creates its job",
    )
    check.set_defaults(func=cmd_storage_check)

    from videoqueue.client_cli import add_client_commands
    from videoqueue.client_jobs_cli import add_jobs_commands

    add_client_commands(commands)
    add_jobs_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = build_parser().parse_args(argv)
    if args.command not in ("serve", "worker", "migrate"):
        # Account commands print tables; the schema check before them need not chatter.
        logging.getLogger("alembic").setLevel(logging.WARNING)
    if args.command in ("generate", "upscale", "jobs"):
        # Their requests show on the progress line or in the table, not as a log line each.
        logging.getLogger("httpx").setLevel(logging.WARNING)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
