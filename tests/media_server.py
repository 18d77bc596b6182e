"""A real HTTP server on a loopback address, serving what a test tells it to (files, redirects,
stalls, endless bodies), and counting what reached it; it also takes POSTs (webhook deliveries),
keeping each and answering them as told."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    chunked: bool = False
    stall_s: float = 0.0
    """Send the headers, then wait this long before the body."""
    drip_s: float = 0.0
    """Send the body one byte at a time, this long apart."""
    endless_limit: int = 0
    """Stream zero bytes (chunked) up to this many, or until the client hangs up."""


@dataclass(frozen=True)
class Received:
    """One POST: its path, headers (names in lower case) and body."""

    path: str
    headers: dict[str, str]
    body: bytes


class MediaServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Route] = {}
        self.post_answers: dict[str, list[Route]] = {}
        self.received: list[Received] = []
        self.hits: list[tuple[str, str]] = []
        """(path, Host header) of every request received."""
        self.streamed = 0
        self.stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.hits.append((self.path, self.headers.get("Host", "")))
                route = server.routes.get(self.path, Route(body=b"not found", status=404))
                self.send_response(route.status)
                for name, value in route.headers.items():
                    self.send_header(name, value)
                if route.chunked or route.endless_limit:
                    self.send_header("Transfer-Encoding", "chunked")
                elif "Content-Length" not in route.headers:
                    self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.flush()
                if route.stall_s and server.stop.wait(route.stall_s):
                    return
                with suppress(BrokenPipeError, ConnectionResetError):
                    self._body(route)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {name.lower(): value for name, value in self.headers.items()}
                server.received.append(Received(self.path, headers, body))
                answers = server.post_answers.get(self.path) or [Route(status=404)]
                route = answers.pop(0) if len(answers) > 1 else answers[0]
                if route.stall_s and server.stop.wait(route.stall_s):
                    return
                self.send_response(route.status)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                with suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(route.body)

            def _body(self, route: Route) -> None:
                if route.endless_limit:
                    chunk = bytes(64 * 1024)
                    while server.streamed < route.endless_limit and not server.stop.is_set():
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        server.streamed += len(chunk)
                    self.wfile.write(b"0\r\n\r\n")
                elif route.drip_s:
                    for byte in route.body:
                        if server.stop.wait(route.drip_s):
                            return
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                elif route.chunked:
                    for start in range(0, len(route.body), 1 << 20):
                        part = route.body[start : start + (1 << 20)]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self.wfile.write(route.body)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that hangs up mid-body is what several tests do on purpose

        self.httpd = Server((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.host = host
        self.port = self.httpd.server_address[1]

    def url(self, path: str, host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    def serve(
        self,
        path: str,
        body: bytes = b"",
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        chunked: bool = False,
        stall_s: float = 0.0,
        drip_s: float = 0.0,
        endless_limit: int = 0,
    ) -> str:
        """Serve `body` (or the described stream) at `path`; return its URL."""
        self.routes[path] = Route(
            body=body,
            status=status,
            headers=headers or {},
            chunked=chunked,
            stall_s=stall_s,
            drip_s=drip_s,
            endless_limit=endless_limit,
        )
        return self.url(path)

    def answer_posts(self, path: str, *answers: Route) -> str:
        """Answer POSTs to `path` with `answers` in turn, the last one from then on (a
        `stall_s` waits before answering); return its URL."""
        self.post_answers[path] = list(answers)
        return self.url(path)


@contextmanager
def running(host: str = "127.0.0.1") -> Iterator[MediaServer]:
    server = MediaServer(host)
    thread = threading.Thread(target=server.httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop.set()
        server.httpd.shutdown()
        server.httpd.server_close()
        thread.join(timeout=5)
