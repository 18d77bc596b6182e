"""The `videoqueue` command: serve, run workers, manage keys."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from videoqueue.clock import SystemClock
from videoqueue.db.migrate import upgrade
from videoqueue.db.session import Database
from videoqueue.settings import Settings

console = Console(stderr=True)


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {k: getattr(args, k, None) for k in ("data_dir", "host", "port")}
    settings = Settings.load(getattr(args, "config", None), **overrides)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings


def _prepare(settings: Settings) -> Database:
    """Migrate the database to the newest schema and return a handle on it."""
    upgrade(settings.resolved_database_url)
    return Database(settings.resolved_database_url)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from videoqueue.api.app import create_app
    from videoqueue.auth.bootstrap import ensure_operator
    from videoqueue.jobs.process import Supervisor

    settings = _settings(args)
    db = _prepare(settings)
    with db.transaction() as session:
        secret = ensure_operator(session, SystemClock())
    if secret:
        console.print("[bold green]Created the operator's admin API key (shown only once):[/]")
        print(secret, flush=True)
    supervisor = Supervisor(settings, settings.workers)
    supervisor.start()
    console.print(f"videoqueue: API on http://{settings.host}:{settings.port}/api/v1, "
                  f"{settings.workers} worker(s), data in {settings.data_dir.resolve()}")
    try:
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                    log_level="info")
    finally:
        supervisor.stop()
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from videoqueue.jobs.process import worker_main

    settings = _settings(args)
    _prepare(settings)
    worker_main(settings.model_dump(mode="json"))
    return 0


def cmd_keys_create(args: argparse.Namespace) -> int:
    from videoqueue.auth.keys import create_key
    from videoqueue.auth.models import KeyKind
    from videoqueue.billing.ledger import create_account
    from videoqueue.billing.models import Account, AccountKind

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
            account_id = create_account(session, kind=AccountKind.STANDARD, clock=clock,
                                        name=args.name or "").id
        kind = KeyKind.ADMIN if args.admin else KeyKind.INFERENCE
        key, secret = create_key(session, account_id=account_id, kind=kind, clock=clock,
                                 name=args.name or "")
    console.print(f"{kind} key {key.id} for account {account_id} (shown only once):")
    print(secret, flush=True)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _prepare(settings)
    console.print(f"database at {settings.resolved_database_url} is up to date")
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="where the database and media live (default ./videoqueue-data, "
                             "or $VIDEOQUEUE_DATA_DIR)")
    parser.add_argument("--config", type=Path, default=None, help="a settings TOML file")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="videoqueue", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the API and a worker")
    _common(serve)
    serve.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="listen port (default 8000)")
    serve.set_defaults(func=cmd_serve)

    worker = commands.add_parser("worker", help="run a worker only (scale-out)")
    _common(worker)
    worker.set_defaults(func=cmd_worker)

    migrate = commands.add_parser("migrate", help="create or upgrade the database schema")
    _common(migrate)
    migrate.set_defaults(func=cmd_migrate)

    keys = commands.add_parser("keys", help="manage API keys")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_commands.add_parser("create", help="create a key and print it once")
    _common(create)
    create.add_argument("--name", default=None)
    create.add_argument("--admin", action="store_true", help="an ADMIN key (default INFERENCE)")
    create.add_argument("--account", default=None,
                        help="an existing account id (default: a new account)")
    create.set_defaults(func=cmd_keys_create)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
