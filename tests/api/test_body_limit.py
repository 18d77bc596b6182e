"""Bodies over 35 MB (spec §3.3): 413 PayloadTooLarge, refused while reading, before the whole
body has arrived."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

from tests.accounts import live_server
from tests.conftest import Env

TOO_LARGE = {"code": "PAYLOAD_TOO_LARGE", "error": "Request body exceeds the maximum allowed size."}
MB = 1024 * 1024


def test_a_declared_length_over_35_mb_is_refused(env: Env) -> None:
    assert env.settings.max_body_bytes == 35 * MB
    response = env.client.post(
        "/api/v1/video/queue",
        content=b" " * (35 * MB + 1),
        headers={"Authorization": f"Bearer {env.make_key()}", "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json() == TOO_LARGE


def _read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        part = sock.recv(65536)
        assert part, "the server closed the connection without answering"
        data += part
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        part = sock.recv(65536)
        assert part
        body += part
    return head, body


def test_a_chunked_body_is_refused_once_it_passes_35_mb_without_waiting_for_its_end(
    env: Env,
) -> None:
    key = env.make_key()
    with live_server(env.client.app) as base:
        url = urlsplit(base)
        assert url.hostname is not None and url.port is not None
        with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
            sock.sendall(
                b"POST /api/v1/video/queue HTTP/1.1\r\nHost: %s:%d\r\n"
                b"Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
                % (url.hostname.encode(), url.port, key.encode())
            )
            chunk = b" " * MB
            for _ in range(35):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            # One byte past the limit, and the body never ends (no closing 0-length chunk):
            # only a server that refuses while reading can answer.
            sock.sendall(b"1\r\n \r\n")
            head, body = _read_response(sock)
    assert head.split(b"\r\n")[0].startswith(b"HTTP/1.1 413 ")
    assert json.loads(body) == TOO_LARGE
