"""Delivery-link tokens: unguessable, bound to one job and expiry, unforgeable; the secret file."""

from __future__ import annotations

import base64
import stat
import string
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from videoqueue.delivery.secret import SECRET_FILE, LinkSecretError, load_link_secret
from videoqueue.delivery.tokens import TOKEN_BYTES, TOKEN_CHARS, InvalidToken, LinkSigner

SECRET = b"s" * 32
ALPHABET = string.ascii_letters + string.digits + "-_"
NOW = datetime(2026, 8, 22, 12, 0, 0, 500_000, tzinfo=UTC)


def _decode(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_a_token_verifies_to_the_claims_it_was_issued_with() -> None:
    signer = LinkSigner(SECRET)
    job_id = str(uuid.uuid4())
    claims, token = signer.issue(job_id, NOW + timedelta(hours=24))
    assert signer.verify(token) == claims
    assert claims.job_id == job_id
    assert claims.expires_at == datetime(2026, 8, 23, 12, 0, 0, tzinfo=UTC)
    assert len(token) == TOKEN_CHARS and set(token) <= set(ALPHABET)


def test_each_link_gets_a_fresh_128_bit_id() -> None:
    signer = LinkSigner(SECRET)
    job_id = str(uuid.uuid4())
    ids = {signer.issue(job_id, NOW)[0].link_id for _ in range(2000)}
    assert len(ids) == 2000
    assert all(len(bytes.fromhex(link_id)) == 16 for link_id in ids)


def test_changing_any_character_of_a_token_invalidates_it() -> None:
    signer = LinkSigner(SECRET)
    _, token = signer.issue(str(uuid.uuid4()), NOW)
    for i, char in enumerate(token):
        replacement = ALPHABET[(ALPHABET.index(char) + 1) % len(ALPHABET)]
        with pytest.raises(InvalidToken):
            signer.verify(token[:i] + replacement + token[i + 1 :])


def test_claims_rewritten_without_the_secret_are_refused() -> None:
    signer = LinkSigner(SECRET)
    _, token = signer.issue(str(uuid.uuid4()), NOW)
    raw = bytearray(_decode(token))
    raw[17:33] = uuid.uuid4().bytes  # another job's id
    with pytest.raises(InvalidToken):
        signer.verify(_encode(bytes(raw)))
    raw = bytearray(_decode(token))
    raw[33:41] = (2**40).to_bytes(8, "big")  # a later expiry
    with pytest.raises(InvalidToken):
        signer.verify(_encode(bytes(raw)))


def test_a_token_signed_with_another_secret_is_refused() -> None:
    _, token = LinkSigner(b"x" * 32).issue(str(uuid.uuid4()), NOW)
    with pytest.raises(InvalidToken):
        LinkSigner(SECRET).verify(token)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "A" * (TOKEN_CHARS - 1),
        "A" * (TOKEN_CHARS + 1),
        "é" * TOKEN_CHARS,
        "+" * TOKEN_CHARS,
        "=" * TOKEN_CHARS,
    ],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidToken):
        LinkSigner(SECRET).verify(token)


@given(st.binary(min_size=TOKEN_BYTES, max_size=TOKEN_BYTES))
def test_random_bytes_never_make_a_valid_token(raw: bytes) -> None:
    with pytest.raises(InvalidToken):
        LinkSigner(SECRET).verify(_encode(raw))


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        LinkSigner(b"short")


def test_the_secret_is_generated_once_with_mode_0600_and_kept(tmp_path: Path) -> None:
    first = load_link_secret(None, tmp_path / "data")
    path = tmp_path / "data" / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32
    assert load_link_secret(None, tmp_path / "data") == first
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [SECRET_FILE]


def test_processes_starting_together_agree_on_one_secret(tmp_path: Path) -> None:
    with ThreadPoolExecutor(8) as pool:
        secrets = set(pool.map(lambda _: load_link_secret(None, tmp_path), range(32)))
    assert len(secrets) == 1


def test_a_configured_secret_wins_and_writes_no_file(tmp_path: Path) -> None:
    assert load_link_secret("c" * 40, tmp_path) == b"c" * 40
    assert not (tmp_path / SECRET_FILE).exists()


def test_a_truncated_secret_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / SECRET_FILE).write_text("too short\n")
    with pytest.raises(LinkSecretError):
        load_link_secret(None, tmp_path)
