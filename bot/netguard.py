"""No server-side request forgery: image URLs must be http(s) and resolve to public addresses."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Collection

import yarl

from bot.errors import InputError


def _public(address: str) -> bool:
    """Whether an IP address is on the public internet."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def check_url(url: str, *, trusted_hosts: Collection[str] = ()) -> None:
    """Refuse non-http(s) URLs and hosts that resolve to loopback, private or link-local addresses.

    `trusted_hosts` (the provider's own host) may be anywhere: the operator chose it.
    """
    try:
        parsed = yarl.URL(url)
    except ValueError:
        raise InputError("That is not a valid URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InputError(f"Only http(s) image URLs are allowed, not {parsed.scheme or 'this'}:")
    host = parsed.host
    if host in trusted_hosts:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, parsed.port, type=socket.SOCK_STREAM)
    except OSError:
        raise InputError(f"The image host {host} cannot be found") from None
    if not infos or not all(_public(str(info[4][0])) for info in infos):
        raise InputError(f"Refused: {host} is a private or local address")
