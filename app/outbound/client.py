"""Guarded outbound HTTP: the only way Hookrunner talks to other servers.

Contract:

* **Refused destinations.** Unless ``allow_private`` is set, a destination that
  is not a global address (loopback, private, link-local, unspecified,
  multicast, reserved, shared, documentation ranges; IPv4-mapped IPv6 is judged
  by its IPv4 address) fails with :class:`PrivateAddressRefused` **before any
  TCP connection is attempted**: the host - a name, or any numeric form the
  resolver accepts (``2130706433``, ``0x7f000001``, ``127.1``, ``0``) - is
  resolved once, every resolved address is checked, one non-global address
  refuses the request, and the socket connects only to an address that was
  checked (never resolving again, so DNS rebinding between check and connect
  cannot route around it). As a second line, ``getpeername()`` of the socket is
  checked again right after the connect (before TLS). Because nothing is
  connected, the refusal is the same whether the internal port is open or
  closed: forwards cannot be used to scan the operator's network (SSRF).
* **No redirects, no retries**: a 3xx is returned as is; the caller decides.
* **Bounded**: ``timeout`` bounds connect and each read, and the body read stops
  once the deadline passes; at most ``max_response_bytes`` of the body are kept
  (``truncated`` says more was there) and a partly read connection is closed
  rather than reused.
* Nothing here logs: URLs, headers and bodies may carry secrets.

One ``PoolManager`` per ``allow_private`` flag per process (:func:`pool_manager`).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NameResolutionError, NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3TimeoutError
from urllib3.util import Timeout, parse_url

_CHUNK = 64 * 1024


class PrivateAddressRefused(Exception):
    """The destination is not a global address and private targets are not allowed."""

    def __init__(self, host: str, address: str) -> None:
        super().__init__(f"{host} is {address}, which is not a global address")
        self.host = host
        self.address = address


def checked_addresses(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to; PrivateAddressRefused if any is not global.

    ``socket.gaierror`` (the name does not resolve) propagates.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    refused = [address for address in addresses if not is_global_address(address)]
    if refused or not addresses:
        raise PrivateAddressRefused(host, ", ".join(refused) or "unresolvable")
    return addresses


def _connect_checked(conn: HTTPConnection, connect: Callable[[], socket.socket]) -> socket.socket:
    """Resolve and check ``conn``'s host, then connect to the checked addresses in turn."""
    host = conn._dns_host
    try:
        addresses = checked_addresses(host, conn.port or 80)
    except socket.gaierror as exc:
        raise NameResolutionError(conn.host, conn, exc) from exc
    last: Exception | None = None
    try:
        for address in addresses:
            conn._dns_host = address  # urllib3 connects to this; Host and SNI keep conn.host
            try:
                return connect()
            except NewConnectionError as exc:
                last = exc
    finally:
        conn._dns_host = host
    assert last is not None
    raise last


class ResponseTimeout(Urllib3TimeoutError):
    """The response body was still arriving when the total timeout ran out."""


# Not for outbound requests, whatever this Python's ``is_global`` says: 192.0.0.0/24 is
# the IETF's protocol block (older Pythons call most of it global); the NAT64 prefix for
# local use; IPv4-compatible IPv6, deprecated.
_NEVER_GLOBAL = (
    ipaddress.ip_network("192.0.0.0/24"),
    ipaddress.ip_network("64:ff9b:1::/48"),
    ipaddress.ip_network("::/96"),
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries: mapped, 6to4 or well-known NAT64."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_global_address(address: str) -> bool:
    """True for a public unicast address.

    An IPv6 address that carries an IPv4 one (IPv4-mapped, 6to4, NAT64
    ``64:ff9b::/96``) is judged by that IPv4 address, since a gateway on the way
    delivers it there.
    """
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if any(ip in network for network in _NEVER_GLOBAL if network.version == ip.version):
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return is_global_address(str(embedded))
    return ip.is_global and not ip.is_multicast


def _check_peer(sock: socket.socket, host: str, allow_private: bool) -> socket.socket:
    if allow_private:
        return sock
    try:
        address = str(sock.getpeername()[0])
        allowed = is_global_address(address)
    except (OSError, ValueError):
        address, allowed = "an unknown address", False
    if not allowed:
        sock.close()
        raise PrivateAddressRefused(host, address)
    return sock


class GuardedHTTPConnection(HTTPConnection):
    """An HTTP connection that refuses non-global peers unless ``allow_private``."""

    def __init__(self, *args: Any, allow_private: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.allow_private = allow_private

    def _new_conn(self) -> socket.socket:
        # _new_conn is the TCP connect step of both connect() implementations.
        if self.allow_private:
            return super()._new_conn()
        sock = _connect_checked(self, super()._new_conn)
        return _check_peer(sock, self.host, self.allow_private)


class GuardedHTTPSConnection(HTTPSConnection):
    """The TLS variant; the peer is checked before the handshake starts."""

    def __init__(self, *args: Any, allow_private: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.allow_private = allow_private

    def _new_conn(self) -> socket.socket:
        if self.allow_private:
            return super()._new_conn()
        sock = _connect_checked(self, super()._new_conn)
        return _check_peer(sock, self.host, self.allow_private)


class GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


class GuardedPoolManager(urllib3.PoolManager):
    """A PoolManager whose pools hand ``allow_private`` to every new connection."""

    def __init__(self, *, allow_private: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.allow_private = allow_private
        self.pool_classes_by_scheme = {
            "http": GuardedHTTPConnectionPool,
            "https": GuardedHTTPSConnectionPool,
        }

    def _new_pool(
        self, scheme: str, host: str, port: int, request_context: dict[str, Any] | None = None
    ) -> HTTPConnectionPool:
        context = dict(self.connection_pool_kw if request_context is None else request_context)
        context["allow_private"] = self.allow_private  # becomes a connection keyword
        return super()._new_pool(scheme, host, port, context)


_managers: dict[bool, GuardedPoolManager] = {}
_managers_lock = threading.Lock()


def pool_manager(allow_private: bool) -> GuardedPoolManager:
    """The process-wide manager for this flag (created on first use)."""
    with _managers_lock:
        manager = _managers.get(allow_private)
        if manager is None:
            manager = GuardedPoolManager(allow_private=allow_private, num_pools=64, maxsize=10)
            _managers[allow_private] = manager
        return manager


def clear_pools() -> None:
    """Close every pooled connection (tests, shutdown)."""
    with _managers_lock:
        for manager in _managers.values():
            manager.clear()


@dataclass(frozen=True)
class OutboundResponse:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes  # at most max_response_bytes
    truncated: bool


def request(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    body: bytes | None,
    timeout: float,
    max_response_bytes: int,
    allow_private: bool,
) -> OutboundResponse:
    """Send one request; raises urllib3 errors, PrivateAddressRefused or ResponseTimeout."""
    host = parse_url(url).host or ""
    if not allow_private:
        try:
            literal = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            literal = None
        if literal is not None and not is_global_address(str(literal)):
            raise PrivateAddressRefused(host, host.strip("[]"))
    deadline = time.monotonic() + timeout
    response = pool_manager(allow_private).request(
        method,
        url,
        headers=headers,
        body=body,
        timeout=Timeout(total=timeout),
        retries=False,
        redirect=False,
        preload_content=False,
    )
    chunks: list[bytes] = []
    size = 0
    complete = False
    try:
        while size <= max_response_bytes:
            if time.monotonic() > deadline:
                raise ResponseTimeout(f"response body not complete after {timeout:g} s")
            chunk = response.read(min(_CHUNK, max_response_bytes + 1 - size))
            if not chunk:
                complete = True
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        if not complete:
            response.close()  # unread data: the connection must not be reused
        response.release_conn()
    data = b"".join(chunks)
    return OutboundResponse(
        status=response.status,
        headers={name.lower(): value for name, value in response.headers.items()},
        body=data[:max_response_bytes],
        truncated=len(data) > max_response_bytes,
    )
