"""Sign-in messages (CAIP-122: EIP-4361 for Ethereum, the same layout for Solana): read and write.

Reading is deliberately tolerant: a message without a `Nonce` or `Chain ID` line still parses,
so that the verifier can answer with the precise code (missing nonce, unsupported chain) rather
than a generic "invalid message". EVM messages are then checked against the EIP-4361 grammar
by the `siwe` package.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime


class Family(enum.StrEnum):
    """Which kind of wallet signed: it decides the message header and the signature scheme."""

    EVM = "Ethereum"
    SOLANA = "Solana"


class MalformedMessage(ValueError):
    """The text is not a sign-in message."""


_HEADER = re.compile(
    r"^(?:(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*)://)?(?P<domain>[^\s/?#]+) wants you to sign in "
    r"with your (?P<family>Ethereum|Solana) account:$"
)
_FIELDS = {
    "URI": "uri",
    "Version": "version",
    "Chain ID": "chain_id",
    "Nonce": "nonce",
    "Issued At": "issued_at",
    "Expiration Time": "expiration_time",
    "Not Before": "not_before",
    "Request ID": "request_id",
}
MAX_NONCE_LENGTH = 128


@dataclass(frozen=True)
class SignInMessage:
    """A sign-in message's fields; `chain_id` and `nonce` are None when their line is absent."""

    family: Family
    domain: str
    address: str
    uri: str
    version: str
    chain_id: str | None
    nonce: str | None
    issued_at: str
    statement: str | None = None
    expiration_time: str | None = None
    not_before: str | None = None
    request_id: str | None = None
    resources: tuple[str, ...] = ()

    def text(self) -> str:
        """The exact text a wallet signs for these fields (the layout EIP-4361 prescribes)."""
        head = f"{self.domain} wants you to sign in with your {self.family.value} account:"
        lines = [head, self.address, ""]
        if self.statement is not None:
            lines += [self.statement, ""]
        elif self.family is Family.EVM:
            lines.append("")  # EIP-4361 keeps the statement's empty line; SIWS does not
        lines += [f"URI: {self.uri}", f"Version: {self.version}"]
        if self.chain_id is not None:
            lines.append(f"Chain ID: {self.chain_id}")
        if self.nonce is not None:
            lines.append(f"Nonce: {self.nonce}")
        lines.append(f"Issued At: {self.issued_at}")
        for label, value in (
            ("Expiration Time", self.expiration_time),
            ("Not Before", self.not_before),
            ("Request ID", self.request_id),
        ):
            if value is not None:
                lines.append(f"{label}: {value}")
        if self.resources:
            lines += ["Resources:", *(f"- {r}" for r in self.resources)]
        return "\n".join(lines)


def parse_message(text: str) -> SignInMessage:
    """The fields of a sign-in message. Raises `MalformedMessage`."""
    lines = text.split("\n")
    header = _HEADER.match(lines[0])
    if header is None or len(lines) < 4 or lines[2] != "":
        raise MalformedMessage("not a sign-in message")
    family = Family(header["family"])
    fields: dict[str, str] = {}
    statement: str | None = None
    resources: list[str] = []
    rest = lines[3:]
    if rest and rest[0] and not rest[0].startswith("URI: "):
        statement = rest[0]
        rest = rest[1:]
    in_resources = False
    for line in rest:
        if in_resources and line.startswith("- "):
            resources.append(line[2:])
            continue
        in_resources = False
        if line == "Resources:":
            in_resources = True
            continue
        if not line:
            continue
        label, sep, value = line.partition(": ")
        if not sep or label not in _FIELDS or _FIELDS[label] in fields:
            raise MalformedMessage(f"unexpected line {line!r}")
        fields[_FIELDS[label]] = value
    for required in ("uri", "version", "issued_at"):
        if required not in fields:
            raise MalformedMessage(f"no {required} line")
    if fields.get("nonce") is not None and not 0 < len(fields["nonce"]) <= MAX_NONCE_LENGTH:
        raise MalformedMessage("bad nonce")
    message = SignInMessage(
        family=family,
        domain=header["domain"],
        address=lines[1],
        chain_id=fields.pop("chain_id", None),
        nonce=fields.pop("nonce", None),
        statement=statement,
        resources=tuple(resources),
        **fields,
    )
    for stamp in (message.issued_at, message.expiration_time, message.not_before):
        if stamp is not None:
            parse_time(stamp)
    if family is Family.EVM and message.chain_id is not None and message.nonce is not None:
        _check_eip4361_grammar(text)
    return message


def _check_eip4361_grammar(text: str) -> None:
    # Imported here: `siwe` loads web3 (~1 s, ~60 MB), which only a wallet sign-in needs.
    from siwe import SiweMessage

    try:
        SiweMessage.from_message(text)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError too
        raise MalformedMessage("not an EIP-4361 message") from exc


def parse_time(stamp: str) -> datetime:
    """An RFC 3339 time from a message (`2026-08-22T10:00:00.000Z`), timezone-aware."""
    try:
        value = datetime.fromisoformat(stamp.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise MalformedMessage(f"bad time {stamp!r}") from None
    if value.tzinfo is None:
        raise MalformedMessage(f"time without a zone {stamp!r}")
    return value
