"""Which address a webhook came from, believing proxies only when they are trusted.

Contract of :func:`client_address`:

* The starting point is the TCP peer (``REMOTE_ADDR``). Only when that peer is
  inside ``TRUSTED_PROXIES`` are forwarding headers read at all; with no trusted
  proxies configured (the default) the peer is the answer, whatever the headers say.
* RFC 7239 ``Forwarded`` wins over ``X-Forwarded-For`` when both are present
  (``for=`` values, quoted IPv6 in brackets, ports stripped; obfuscated or
  ``unknown`` identifiers end the walk).
* The chain is walked **right to left**: each hop appended by a trusted proxy is
  skipped, and the first address that is not a trusted proxy is the client. A
  sender can prepend anything to the header, so nothing left of that address is
  believed. If every hop is trusted, the left-most one is the answer.
* A malformed entry stops the walk at the last address that was believed (the
  trusted proxy that handed it over), never at text the client wrote.

The result is an :class:`ipaddress` object (IPv4-mapped IPv6 peers are reported as
IPv4), or None when the peer itself is not an IP address (say a Unix socket).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_FOR = re.compile(r'(?:^|;)\s*for\s*=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*)', re.IGNORECASE)


def parse_address(text: str) -> IPAddress | None:
    """An IP address from ``text`` (brackets and a port allowed), or None."""
    value = text.strip().strip('"').strip()
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:  # IPv4 with a port
        value = value.partition(":")[0]
    try:
        address = ipaddress.ip_address(value.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@lru_cache(maxsize=64)
def parse_networks(cidrs: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """The networks of validated CIDR strings (settings and trigger documents)."""
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def in_networks(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def _forwarded_chain(headers: Mapping[str, str]) -> list[str] | None:
    """The hops named by ``Forwarded`` (preferred) or ``X-Forwarded-For``, left to right."""
    forwarded = headers.get("forwarded")
    if forwarded:
        hops = []
        for element in forwarded.split(","):
            match = _FOR.search(element)
            hops.append(match.group(1) if match else "")
        return hops
    xff = headers.get("x-forwarded-for")
    if xff:
        return [hop.strip() for hop in xff.split(",")]
    return None


def client_address(
    remote_addr: str | None, headers: Mapping[str, str], trusted: Sequence[IPNetwork]
) -> IPAddress | None:
    """The client's address (see the module contract); ``headers`` keys lower-cased."""
    peer = parse_address(remote_addr or "")
    if peer is None or not trusted or not in_networks(peer, trusted):
        return peer
    chain = _forwarded_chain(headers)
    if not chain:
        return peer
    believed = peer
    for hop in reversed(chain):
        address = parse_address(hop)
        if address is None:
            return believed
        if not in_networks(address, trusted):
            return address
        believed = address
    return believed
