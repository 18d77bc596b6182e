"""Fetching a client's `http(s)://` media URL without letting it reach inside the network.

The guard resolves the host once, checks every address it resolves to, and then connects to a
checked address itself (sending the original Host header and TLS server name), so a DNS answer
that changes between the check and the connection cannot swap in an internal address. Each
redirect is checked the same way, the body is read with a byte cap, and the whole fetch has a
deadline.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from videoqueue.media.errors import MediaError, MediaFetchFailed, MediaUrlRefused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]
"""(host, port) → the addresses it resolves to, as strings."""

NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# What `allow_private_networks` lets through. Link-local (cloud metadata at 169.254.169.254),
# multicast, unspecified and reserved addresses are refused unless named in `allowed_networks`.
PRIVATE_CATEGORIES = frozenset({"loopback", "private", "shared"})


@dataclass(frozen=True)
class FetchPolicy:
    """Where media may be fetched from, and how long and how far a fetch may go."""

    allow_private_networks: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 15.0
    total_timeout_s: float = 60.0
    max_redirects: int = 3


def address_category(ip: IPAddress) -> str | None:
    """None for a public unicast address, else the name of the special range it lies in."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None and (inner := address_category(embedded)) is not None:
            return inner
    checks = (
        ("multicast", ip.is_multicast),
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
        ("shared", not ip.is_global),
    )
    return next((name for name, hit in checks if hit), None)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped, 6to4, Teredo or NAT64 address carries."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def refusal(ip: IPAddress, policy: FetchPolicy) -> str | None:
    """Why `policy` refuses to connect to `ip` (the range's name), or None if it may."""
    if any(ip in network for network in policy.allowed_networks):
        return None
    category = address_category(ip)
    if category in PRIVATE_CATEGORIES and policy.allow_private_networks:
        return None
    return category


def resolve_addresses(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host` (an IP literal resolves to itself)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _shown(url: httpx.URL) -> str:
    text = str(url.copy_with(username=None, password=None, query=None, fragment=None))
    return text if len(text) <= 200 else text[:197] + "..."


def _parse(url: str, field: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        raise MediaError(f"{field}: not a valid URL", code="INVALID_REQUEST") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise MediaError(
            f"{field} must be an http(s):// URL or a data: URL", code="INVALID_REQUEST"
        )
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise MediaError(f"{field}: not a valid URL (port {parsed.port})", code="INVALID_REQUEST")
    return parsed


def checked_addresses(
    url: httpx.URL, field: str, policy: FetchPolicy, resolve: Resolver
) -> list[IPAddress]:
    """The addresses `url`'s host resolves to, every one allowed by `policy`; else refuse."""
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        found = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolve(url.host, port)]
    except (OSError, UnicodeError, ValueError):
        raise MediaFetchFailed(f"{field}: the host {url.host} could not be resolved") from None
    if not found:
        raise MediaFetchFailed(f"{field}: the host {url.host} could not be resolved")
    for ip in found:
        why = refusal(ip, policy)
        if why is not None:
            raise MediaUrlRefused(
                f"{field}: {url.host} resolves to {ip}, a {why} address; this server connects "
                f"to public addresses only"
            )
    return found


def pinned(url: httpx.URL, ip: IPAddress) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
    """The URL, Host header and extensions (TLS SNI) of a request that goes to the checked
    address `ip` but names `url`'s host."""
    extensions: dict[str, str] = {}
    if url.scheme == "https":
        extensions["sni_hostname"] = url.host
    return url.copy_with(host=str(ip)), {"Host": url.netloc.decode("ascii")}, extensions


def _read_capped(
    response: httpx.Response,
    field: str,
    max_bytes: int,
    too_large: Callable[[], MediaError],
    deadline: float,
) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large()
    body = bytearray()
    for chunk in response.iter_raw():
        body += chunk
        if len(body) > max_bytes:
            raise too_large()
        if time.monotonic() > deadline:
            raise MediaFetchFailed(f"{field}: fetching the URL took too long")
    return bytes(body)


def fetch_media(
    url: str,
    field: str,
    *,
    max_bytes: int,
    too_large: Callable[[], MediaError],
    policy: FetchPolicy,
    resolve: Resolver = resolve_addresses,
    transport: httpx.BaseTransport | None = None,
) -> bytes:
    """The body behind an http(s) media URL, at most `max_bytes` (else `too_large()` is raised).

    Raises `MediaUrlRefused` for an address the policy does not allow (before connecting to it),
    `MediaFetchFailed` for a failed, non-200, slow or endlessly redirected fetch.
    """
    current = _parse(url, field)
    deadline = time.monotonic() + policy.total_timeout_s
    timeout = httpx.Timeout(policy.read_timeout_s, connect=policy.connect_timeout_s)
    with httpx.Client(
        transport=transport, timeout=timeout, trust_env=False, follow_redirects=False
    ) as client:
        for _ in range(policy.max_redirects + 1):
            addresses = checked_addresses(current, field, policy, resolve)
            response = _get(client, current, addresses, field)
            try:
                if response.is_redirect and "location" in response.headers:
                    current = _parse(str(current.join(response.headers["location"])), field)
                    continue
                if response.status_code != 200:
                    raise MediaFetchFailed(
                        f"{field}: {_shown(current)} answered HTTP {response.status_code}"
                    )
                return _read_capped(response, field, max_bytes, too_large, deadline)
            except httpx.TimeoutException:
                raise MediaFetchFailed(f"{field}: {_shown(current)} timed out") from None
            except httpx.HTTPError as exc:
                raise MediaFetchFailed(
                    f"{field}: {_shown(current)} could not be read ({type(exc).__name__})"
                ) from None
            finally:
                response.close()
    raise MediaFetchFailed(f"{field}: more than {policy.max_redirects} redirects")


def _get(
    client: httpx.Client, url: httpx.URL, addresses: Sequence[IPAddress], field: str
) -> httpx.Response:
    """Send the GET to the first checked address that accepts a connection."""
    problem = "could not be reached"
    for ip in addresses:
        target, host, extensions = pinned(url, ip)
        headers = {**host, "Accept-Encoding": "identity", "User-Agent": "videoqueue-media"}
        request = client.build_request("GET", target, headers=headers, extensions=extensions)
        try:
            return client.send(request, stream=True)
        except httpx.ConnectError:
            continue
        except httpx.TimeoutException:
            problem = "timed out"
            break
        except httpx.HTTPError as exc:
            problem = f"could not be read ({type(exc).__name__})"
            break
    raise MediaFetchFailed(f"{field}: {_shown(url)} {problem}")
