"""Which URLs the web tools may reach: one policy for fetching and browsing alike.

A URL is fetched only if its scheme is http or https and every address its host
resolves to is public. Loopback, private, link-local, multicast, reserved,
unspecified and cloud-metadata addresses are refused, because a page (or a
model obeying one) must never make the tool reach into the machine it runs on
or the network around it. IPv4-mapped and 6to4 IPv6 addresses are judged by the
IPv4 address inside them.

An explicit allow-list opens specific hosts, whatever they resolve to:
``UrlPolicy(allow_hosts=["127.0.0.1:8080"])`` or, from the environment,
``ROLEGRAPH_ALLOW_HOSTS=127.0.0.1,docs.internal:8443``. An entry names a host
(or IP) as it is written in the URL, optionally with a port; a different name
that happens to resolve to an allowed address is not opened by it.

DNS rebinding: checking a name and then letting the HTTP client resolve it again
would let a hostile DNS server answer "public" to the check and "127.0.0.1" to
the connection. `PolicyTransport` closes that gap: for every request, including
each redirect hop, it runs the check, then sends the request to the checked IP
address itself (the ``Host`` header and the TLS server name stay the original
host, so virtual hosts and certificate checks work as before). The client never
resolves a name on its own. Proxies taken from the environment would resolve
names elsewhere, so clients built on this transport must set ``trust_env=False``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

import httpx

from rolegraph.errors import ToolError

__all__ = [
    "ALLOW_HOSTS_ENV",
    "PolicyTransport",
    "ResolvedUrl",
    "Resolver",
    "UrlPolicy",
    "UrlRefused",
    "classify",
]

ALLOW_HOSTS_ENV = "ROLEGRAPH_ALLOW_HOSTS"
"""Environment variable holding extra allowed hosts, comma-separated (``host``, ``host:port``, ``[v6]:port``)."""

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""Resolves a host name and port to IP address strings (injected in tests, so none touches DNS)."""

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean
        "169.254.170.2",  # AWS ECS task metadata
        "100.100.100.200",  # Alibaba Cloud
        "fd00:ec2::254",  # AWS over IPv6
    )
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_NAME = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*$")


class UrlRefused(ToolError):
    """The URL policy refused a URL; the message says which URL and why."""


def classify(ip: str | IpAddress) -> str | None:
    """Why an address may not be reached, or None if it is public.

    Pure: classifies the address, never connects to it.

    >>> classify("10.0.0.1"), classify("93.184.216.34")
    ('private', None)

    Returns:
        One of ``cloud metadata``, ``unspecified``, ``loopback``, ``link-local``,
        ``multicast``, ``private``, ``reserved``, ``non-public``; or None.
    """
    address = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            address = ipaddress.IPv6Address(str(address).split("%")[0])
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return classify(embedded)
    checks = (
        ("cloud metadata", address in _METADATA),
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("non-public", not address.is_global),  # e.g. shared address space 100.64.0.0/10
    )
    return next((kind for kind, hit in checks if hit), None)


@dataclass(frozen=True)
class ResolvedUrl:
    """A URL the policy accepted, with the addresses it was checked against.

    Attributes:
        url: The URL, normalised.
        scheme: ``http`` or ``https``.
        host: The host as written in the URL (lower case, no brackets).
        port: The port, explicit or the scheme's default.
        addresses: Every address the host resolved to; connect to one of these, never resolve again.
        allowed: True if an allow-list entry opened the host (its addresses were not classified).
    """

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]
    allowed: bool = False


@dataclass(frozen=True)
class _Entry:
    host: str
    port: int | None


def _normal_host(host: str) -> str:
    host = host.strip().strip("[]").rstrip(".").lower()
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _parse_entry(text: str) -> _Entry:
    text = text.strip()
    port: str | None = None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host = text
    host = _normal_host(host)
    if not (_NAME.match(host) or _is_ip(host)) or (port is not None and not port.isdigit()):
        raise ValueError(f"allowed host {text!r} is not 'host', 'host:port', an IP address or '[v6]:port'")
    return _Entry(host, int(port) if port else None)


async def _getaddrinfo(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class UrlPolicy:
    """Decides which URLs may be fetched; see the module docstring for the rules.

    Args:
        allow_hosts: Hosts opened whatever they resolve to: ``host``, ``host:port``
            or ``[v6]:port``.
        schemes: Schemes that may be fetched.
        resolver: Resolves names to addresses (default: the event loop's getaddrinfo).

    Raises:
        ValueError: An allow-list entry is malformed.
    """

    def __init__(
        self,
        allow_hosts: Iterable[str] = (),
        *,
        schemes: Iterable[str] = ("http", "https"),
        resolver: Resolver | None = None,
    ) -> None:
        self.allow_hosts = tuple(entry.strip() for entry in allow_hosts if entry.strip())
        self._entries = tuple(_parse_entry(entry) for entry in self.allow_hosts)
        self.schemes = frozenset(s.lower() for s in schemes)
        self._resolve = resolver or _getaddrinfo

    @classmethod
    def from_env(
        cls,
        allow_hosts: Iterable[str] = (),
        *,
        environ: Mapping[str, str] | None = None,
        resolver: Resolver | None = None,
    ) -> UrlPolicy:
        """A policy opening `allow_hosts` plus the hosts in ``ROLEGRAPH_ALLOW_HOSTS``."""
        env = os.environ if environ is None else environ
        extra = [part for part in env.get(ALLOW_HOSTS_ENV, "").split(",") if part.strip()]
        return cls([*allow_hosts, *extra], resolver=resolver)

    def is_allowed_host(self, host: str, port: int) -> bool:
        """Whether an allow-list entry opens `host` on `port`."""
        wanted = _normal_host(host)
        return any(e.host == wanted and e.port in (None, port) for e in self._entries)

    async def check(self, url: str | httpx.URL) -> ResolvedUrl:
        """Accept `url` or say why not.

        Raises:
            UrlRefused: The scheme is not allowed, the URL has no host, or the host
                resolves to an address that may not be reached.
            ToolError: The host name cannot be resolved.
        """
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError) as exc:
            raise UrlRefused(f"refused {str(url)[:200]!r}: not a valid URL ({exc})") from None
        scheme = parsed.scheme.lower()
        if scheme not in self.schemes:
            shown = f"{scheme}:" if scheme else "a URL without a scheme"
            schemes = " and ".join(sorted(self.schemes))
            raise UrlRefused(f"refused {str(parsed)[:200]!r}: only {schemes} URLs may be fetched, not {shown}")
        host = parsed.host
        if not host:
            raise UrlRefused(f"refused {str(parsed)[:200]!r}: the URL has no host")
        port = parsed.port or _DEFAULT_PORTS.get(scheme, 0)
        allowed = self.is_allowed_host(host, port)
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            try:
                addresses = await self._resolve(host, port)
            except OSError as exc:
                raise ToolError(f"cannot resolve host {host!r}: {exc}") from None
        if not addresses:
            raise ToolError(f"cannot resolve host {host!r}: no addresses")
        if not allowed:
            for address in addresses:
                kind = classify(address)
                if kind is not None:
                    where = host if host == address else f"{host} resolves to {address}, which"
                    raise UrlRefused(
                        f"refused {str(parsed)[:200]!r}: {where} is a {kind} address; only public "
                        f"addresses may be fetched (an operator can open a host with {ALLOW_HOSTS_ENV})"
                    )
        return ResolvedUrl(str(parsed), scheme, host, port, tuple(addresses), allowed)


class PolicyTransport(httpx.AsyncBaseTransport):
    """An httpx transport that checks every request against a `UrlPolicy` and connects to the checked address.

    By default each host gets its own connection pool: pools are keyed by the
    address connected to, and two names served from one address must not share
    a TLS connection whose certificate was checked for only one of them.

    Args:
        policy: The policy every request (and so every redirect hop) must pass.
        inner: One transport for every pinned request instead (tests pass an
            `httpx.MockTransport`).
    """

    def __init__(self, policy: UrlPolicy, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.policy = policy
        self.inner = inner
        self._pools: dict[str, httpx.AsyncBaseTransport] = {}

    def _transport(self, host: str) -> httpx.AsyncBaseTransport:
        if self.inner is not None:
            return self.inner
        if host not in self._pools:
            self._pools[host] = httpx.AsyncHTTPTransport()
        return self._pools[host]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Check the request's URL, then send it to the address that was checked.

        Raises:
            UrlRefused: The policy refused the URL; nothing was sent.
        """
        resolved = await self.policy.check(request.url)
        extensions = dict(request.extensions)
        if resolved.scheme == "https":
            extensions["sni_hostname"] = resolved.host
        pinned = httpx.Request(
            request.method,
            request.url.copy_with(host=resolved.addresses[0]),
            headers=request.headers,  # keeps the original Host header
            stream=request.stream,
            extensions=extensions,
        )
        return await self._transport(resolved.host).handle_async_request(pinned)

    async def aclose(self) -> None:
        """Close every connection pool."""
        transports = [self.inner] if self.inner is not None else list(self._pools.values())
        self._pools.clear()
        for transport in transports:
            await transport.aclose()
