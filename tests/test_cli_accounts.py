"""`videoqueue keys create|list|revoke`, `videoqueue credit` and `videoqueue ledger verify`,
run as a user would, against a data dir."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, update

from videoqueue.auth.keys import find_active_key, find_key
from videoqueue.auth.models import KeyKind
from videoqueue.billing.models import Account, LedgerEntry, LedgerKind, LimitPeriod
from videoqueue.cli import main
from videoqueue.clock import SystemClock
from videoqueue.db.session import Database
from videoqueue.settings import Settings


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def db(data_dir: Path) -> Database:
    return Database(Settings(data_dir=data_dir).resolved_database_url)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _create(capsys: pytest.CaptureFixture[str], data_dir: Path, *extra: str) -> str:
    code, out, _ = _run(capsys, "keys", "create", "--data-dir", str(data_dir), *extra)
    assert code == 0
    return out.strip().splitlines()[-1]


def test_keys_are_created_listed_and_revoked(
    capsys: pytest.CaptureFixture[str], data_dir: Path, db: Database
) -> None:
    secret = _create(
        capsys,
        data_dir,
        "--name",
        "ci",
        "--limit-usd",
        "5",
        "--limit-period",
        "monthly",
        "--expires",
        "2999-01-01",
    )
    admin = _create(capsys, data_dir, "--admin")
    with db.transaction() as session:
        key = find_key(session, secret)
        assert key is not None
        assert (key.kind, key.name, key.usd_limit_micros, key.limit_period) == (
            KeyKind.INFERENCE,
            "ci",
            5_000_000,
            LimitPeriod.MONTH,
        )
        assert key.expires_at is not None and key.expires_at.year == 2999
        key_id = key.id

    code, out, _ = _run(capsys, "keys", "list", "--data-dir", str(data_dir))
    listed = [line.split("\t") for line in out.strip().splitlines()]
    assert code == 0 and listed[0][0] == "id"
    assert key_id in [row[0] for row in listed[1:]] and len(listed) == 3
    assert secret not in out and admin not in out, "secrets are never shown again"

    assert _run(capsys, "keys", "revoke", "--data-dir", str(data_dir), key_id)[0] == 0
    with db.transaction() as session, pytest.raises(Exception, match="Authentication failed"):
        find_active_key(session, secret, SystemClock())
    assert _run(capsys, "keys", "revoke", "--data-dir", str(data_dir), key_id)[0] == 1
    code, out, _ = _run(capsys, "keys", "list", "--data-dir", str(data_dir), "--all")
    assert key_id in out


def test_credit_writes_top_ups_and_adjustments(
    capsys: pytest.CaptureFixture[str], data_dir: Path, db: Database
) -> None:
    secret = _create(capsys, data_dir)
    with db.transaction() as session:
        key = find_key(session, secret)
        assert key is not None
        account_id, key_id = key.account_id, key.id

    assert _run(capsys, "credit", "--data-dir", str(data_dir), "--key", secret, "12.50")[0] == 0
    assert (
        _run(
            capsys,
            "credit",
            "--data-dir",
            str(data_dir),
            "--account",
            account_id,
            "-2.25",
            "--note",
            "typo",
        )[0]
        == 0
    )
    code, _, err = _run(capsys, "credit", "--data-dir", str(data_dir), "--key", key_id, "-11")
    assert code == 1 and "below zero" in err
    assert _run(capsys, "credit", "--data-dir", str(data_dir), "--account", "nobody", "1")[0] == 1
    with db.transaction() as session:
        account = session.get(Account, account_id)
        assert account is not None and account.balance_micros == 10_250_000
        kinds = sorted(
            session.scalars(select(LedgerEntry.kind).where(LedgerEntry.account_id == account_id))
        )
    assert kinds == [LedgerKind.ADJUSTMENT, LedgerKind.TOP_UP]


def test_ledger_verify_fails_on_a_tampered_balance(
    capsys: pytest.CaptureFixture[str], data_dir: Path, db: Database
) -> None:
    secret = _create(capsys, data_dir)
    _run(capsys, "credit", "--data-dir", str(data_dir), "--key", secret, "3")
    code, _, err = _run(capsys, "ledger", "verify", "--data-dir", str(data_dir))
    assert code == 0 and "consistent" in err

    with db.transaction() as session:
        session.execute(update(Account).values(balance_micros=Account.balance_micros + 1))
    code, _, err = _run(capsys, "ledger", "verify", "--data-dir", str(data_dir))
    assert code == 1
    assert "INCONSISTENT" in err and "balance 3.000001 USD, ledger sums to 3.000000 USD" in err
