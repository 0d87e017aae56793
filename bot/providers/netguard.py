"""No server-side request forgery: image URLs must be http(s) and resolve to public addresses."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Collection

import yarl
from aiohttp import DefaultResolver, TCPConnector
from aiohttp.abc import AbstractResolver, ResolveResult

from bot.errors import InputError
from bot.i18n import Text

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: IPv6 ranges that carry an IPv4 address in their last 32 bits (NAT64 well-known and local-use
#: prefixes, deprecated IPv4-compatible addresses): judged by the IPv4 address they reach.
EMBEDS_IPV4 = (
    ipaddress.IPv6Network("64:ff9b::/96"),
    ipaddress.IPv6Network("64:ff9b:1::/48"),
    ipaddress.IPv6Network("::/96"),
)


#: A URL scheme: two or more characters, so that a Windows drive ("C:\\img.png") is a path.
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")


def has_scheme(source: str) -> bool:
    """Whether a command-line image source is a URL of any scheme (file:, ftp:, data: …), not a path."""
    return SCHEME.match(source) is not None


def _reached(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address really reaches (mapped, 6to4, NAT64), else the address."""
    if isinstance(ip, ipaddress.IPv4Address):
        return ip
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in net for net in EMBEDS_IPV4) and int(ip) & 0xFFFFFFFF:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def _public(address: str) -> bool:
    """Whether an IP address (and any IPv4 address it embeds) is on the public internet."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return all(a.is_global and not a.is_multicast for a in {ip, _reached(ip)})


async def check_url(url: str, *, trusted_hosts: Collection[str] = ()) -> None:
    """Refuse non-http(s) URLs and hosts that resolve to loopback, private or link-local addresses.

    `trusted_hosts` (the provider's own host) may be anywhere: the operator chose it.
    """
    try:
        parsed = yarl.URL(url)
    except ValueError:
        raise InputError(Text("provider.url.invalid")) from None
    if parsed.scheme not in ("http", "https"):
        if parsed.scheme:
            raise InputError(Text("provider.url.scheme_named", scheme=parsed.scheme))
        raise InputError(Text("provider.url.scheme"))
    host = parsed.host
    if not host:
        raise InputError(Text("provider.url.no_host"))
    if host in trusted_hosts:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, parsed.port, type=socket.SOCK_STREAM)
    except OSError:
        raise InputError(Text("provider.url.unknown_host", host=host)) from None
    if not infos or not all(_public(str(info[4][0])) for info in infos):
        raise InputError(Text("provider.url.private", host=host))


class PublicResolver(AbstractResolver):
    """aiohttp's resolver, but an untrusted hostname may only reach public addresses.

    check_url looks a host up before the request; aiohttp looks it up again to connect. This
    closes the gap between the two (DNS rebinding): the answer used to connect is checked too.
    IP literals never reach a resolver; check_url has judged them already.
    """

    def __init__(self, trusted_hosts: Collection[str] = ()) -> None:
        self.trusted = frozenset(trusted_hosts)
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The addresses of host; only the public ones unless the host is trusted."""
        found = await self._inner.resolve(host, port, family)
        if host in self.trusted:
            return found
        public = [info for info in found if _public(info["host"])]
        if not public:
            raise OSError(f"{host} resolves to a private or local address")
        return public

    async def close(self) -> None:
        """Close the wrapped resolver."""
        await self._inner.close()


def guarded_connector(trusted_hosts: Collection[str]) -> TCPConnector:
    """The connector of the bot's one HTTP session: providers' own hosts trusted, others public."""
    return TCPConnector(resolver=PublicResolver(trusted_hosts))
