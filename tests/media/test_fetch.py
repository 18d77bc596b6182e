"""The SSRF guard and the capped fetch of http(s) media URLs.

Only loopback servers are ever connected to. Addresses outside loopback appear only where the
guard must refuse them before connecting, and there the transport is a mock that records what
would have been sent, so even a broken guard sends nothing over the network.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator, Sequence

import httpx
import pytest

from tests.media_server import MediaServer, running
from videoqueue.media.errors import MediaError, MediaFetchFailed, MediaTooLarge, MediaUrlRefused
from videoqueue.media.fetch import (
    FetchPolicy,
    Resolver,
    address_category,
    fetch_media,
    resolve_addresses,
)

CAP = 1024 * 1024
LOCAL = FetchPolicy(allow_private_networks=True)


def too_large() -> MediaError:
    return MediaTooLarge("too large", code="TEST_TOO_LARGE")


def fetch(
    url: str,
    policy: FetchPolicy = LOCAL,
    *,
    resolve: Resolver = resolve_addresses,
    transport: httpx.BaseTransport | None = None,
) -> bytes:
    return fetch_media(
        url,
        "image_url",
        max_bytes=CAP,
        too_large=too_large,
        policy=policy,
        resolve=resolve,
        transport=transport,
    )


class Streamed(httpx.SyncByteStream):
    """A body that arrives as a stream, as from a real server (not pre-read like bytes)."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def __iter__(self) -> Iterator[bytes]:
        yield self.body


class Recorder:
    """A mock transport: records each request and answers from a table (never the network)."""

    def __init__(self, answers: dict[str, httpx.Response] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.answers = answers or {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answers.get(request.url.path, httpx.Response(200, stream=Streamed(b"payload")))

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def resolver(table: dict[str, Sequence[str]], calls: list[str] | None = None) -> Resolver:
    def resolve(host: str, _port: int) -> Sequence[str]:
        if calls is not None:
            calls.append(host)
        return table[host] if host in table else resolve_addresses(host, _port)

    return resolve


@pytest.mark.parametrize(
    ("address", "category"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("100.64.0.1", "shared"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("64:ff9b::a00:1", "private"),
        ("2002:7f00:1::", "loopback"),
        ("8.8.8.8", None),
        ("2001:4860:4860::8888", None),
    ],
)
def test_address_category_names_every_special_range(address: str, category: str | None) -> None:
    assert address_category(ipaddress.ip_address(address)) == category


@pytest.mark.parametrize(
    ("url", "range_name"),
    [
        ("http://10.0.0.1/image.png", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://[::1]/image.png", "loopback"),
        ("http://[::ffff:10.0.0.1]/image.png", "private"),
        ("http://2130706433/image.png", "loopback"),  # 127.0.0.1 written as one number
        ("http://0.0.0.0/image.png", "unspecified"),
    ],
)
def test_internal_addresses_are_refused_before_connecting(url: str, range_name: str) -> None:
    recorder = Recorder()
    with pytest.raises(MediaUrlRefused) as caught:
        fetch(url, FetchPolicy(), transport=recorder.transport)
    assert caught.value.status == 400
    assert caught.value.code == "MEDIA_URL_NOT_ALLOWED"
    assert f"a {range_name} address" in caught.value.message
    assert caught.value.message.startswith("image_url: ")
    assert recorder.requests == []


def test_loopback_server_is_not_contacted_by_address_or_by_localhost(server: MediaServer) -> None:
    server.serve("/a.png", b"secret")
    for url in (server.url("/a.png"), server.url("/a.png", host="localhost")):
        with pytest.raises(MediaUrlRefused, match="loopback address"):
            fetch(url, FetchPolicy())
    assert server.hits == []


def test_a_host_with_one_internal_address_among_public_ones_is_refused() -> None:
    recorder = Recorder()
    resolve = resolver({"mixed.example": ["93.184.216.34", "10.1.2.3"]})
    with pytest.raises(MediaUrlRefused, match=r"10\.1\.2\.3, a private address"):
        fetch(
            "https://mixed.example/a.png",
            FetchPolicy(),
            resolve=resolve,
            transport=recorder.transport,
        )
    assert recorder.requests == []


def test_request_goes_to_the_checked_address_with_the_original_host_and_sni() -> None:
    recorder = Recorder()
    calls: list[str] = []
    resolve = resolver({"media.example": ["93.184.216.34"]}, calls)
    body = fetch(
        "https://media.example:8443/a.png?x=1",
        FetchPolicy(),
        resolve=resolve,
        transport=recorder.transport,
    )
    assert body == b"payload"
    assert calls == ["media.example"], "resolved once: a second answer cannot swap the address"
    (request,) = recorder.requests
    assert request.url.host == "93.184.216.34"
    assert request.url.port == 8443
    assert request.url.raw_path == b"/a.png?x=1"
    assert request.headers["host"] == "media.example:8443"
    assert request.extensions["sni_hostname"] == "media.example"


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1/x",
        "http://[::1]/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost/x",
        "file:///etc/passwd",
    ],
)
def test_a_redirect_to_an_internal_address_is_refused(location: str) -> None:
    recorder = Recorder({"/a.png": httpx.Response(302, headers={"Location": location})})
    resolve = resolver({"media.example": ["93.184.216.34"], "localhost": ["127.0.0.1", "::1"]})
    with pytest.raises(MediaError) as caught:
        fetch(
            "http://media.example/a.png",
            FetchPolicy(),
            resolve=resolve,
            transport=recorder.transport,
        )
    assert caught.value.status == 400
    assert [r.url.host for r in recorder.requests] == ["93.184.216.34"]


def test_a_real_redirect_to_another_loopback_address_is_refused(server: MediaServer) -> None:
    with running("127.0.0.2") as other:
        target = other.serve("/inner.png", b"secret")
        server.serve("/a.png", status=302, headers={"Location": target})
        policy = FetchPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),))
        with pytest.raises(MediaUrlRefused, match=r"127\.0\.0\.2, a loopback address"):
            fetch(server.url("/a.png"), policy)
        assert [path for path, _ in server.hits] == ["/a.png"]
        assert other.hits == []


def test_allowed_networks_and_private_setting_let_loopback_through(server: MediaServer) -> None:
    url = server.serve("/a.png", b"image bytes")
    assert (
        fetch(url, FetchPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),)))
        == b"image bytes"
    )
    assert fetch(url, LOCAL) == b"image bytes"
    assert server.hits[0][1] == f"127.0.0.1:{server.port}"


def test_private_setting_still_refuses_link_local_metadata() -> None:
    recorder = Recorder()
    with pytest.raises(MediaUrlRefused, match="link-local"):
        fetch("http://169.254.169.254/latest/meta-data/", LOCAL, transport=recorder.transport)
    assert recorder.requests == []


def test_relative_redirects_are_followed_up_to_the_cap(server: MediaServer) -> None:
    for i in range(5):
        server.serve(f"/r{i}", status=302, headers={"Location": f"/r{i + 1}"})
    server.serve("/r5", b"finally")
    assert (
        fetch(server.url("/r2"), FetchPolicy(allow_private_networks=True, max_redirects=3))
        == b"finally"
    )
    with pytest.raises(MediaFetchFailed, match="more than 3 redirects"):
        fetch(server.url("/r0"), FetchPolicy(allow_private_networks=True, max_redirects=3))


@pytest.mark.parametrize(
    "scheme_url",
    [
        "file:///etc/passwd",
        "ftp://example.org/a.png",
        "gopher://example.org/",
        "//example.org/a.png",
    ],
)
def test_only_http_and_https_urls_are_fetched(scheme_url: str) -> None:
    with pytest.raises(MediaError, match=r"image_url must be an http\(s\):// URL or a data: URL"):
        fetch(scheme_url, FetchPolicy(), transport=Recorder().transport)


def test_a_declared_length_over_the_cap_is_refused_before_the_body(server: MediaServer) -> None:
    url = server.serve("/big.png", bytes(CAP + 1))
    with pytest.raises(MediaTooLarge):
        fetch(url)


def test_the_cap_is_enforced_while_streaming(server: MediaServer) -> None:
    endless = 256 * CAP
    url = server.serve("/endless", endless_limit=endless)
    with pytest.raises(MediaTooLarge):
        fetch(url)
    assert server.streamed < endless, "the server was cut off long before its body ended"


def test_a_stalled_server_times_out(server: MediaServer) -> None:
    url = server.serve("/slow.png", b"late", stall_s=30)
    started = time.monotonic()
    with pytest.raises(MediaFetchFailed, match="timed out"):
        fetch(url, FetchPolicy(allow_private_networks=True, read_timeout_s=0.3))
    assert time.monotonic() - started < 5


def test_a_dripping_server_hits_the_total_deadline(server: MediaServer) -> None:
    url = server.serve("/drip.png", b"x" * 100, drip_s=0.05)
    with pytest.raises(MediaFetchFailed, match="took too long"):
        fetch(url, FetchPolicy(allow_private_networks=True, read_timeout_s=2, total_timeout_s=0.5))


def test_an_error_status_is_reported_with_the_url(server: MediaServer) -> None:
    with pytest.raises(MediaFetchFailed, match=r"/missing.png answered HTTP 404"):
        fetch(server.url("/missing.png"))


def test_proxy_variables_are_ignored(server: MediaServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://10.9.9.9:3128")
    monkeypatch.setenv("ALL_PROXY", "http://10.9.9.9:3128")
    assert fetch(server.serve("/a.png", b"direct")) == b"direct"
