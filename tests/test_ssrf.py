"""Forwards to internal addresses are refused before any TCP connection is made."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from app.outbound import client as outbound
from tests.conftest import wait_for
from tests.server import free_port

# Names and numeric forms the resolver turns into loopback or "this host".
HOSTS = ["localhost", "2130706433", "0x7f000001", "127.1", "0", "127.0.0.1", "[::1]"]


class CountingListener:
    """A TCP listener on 127.0.0.1 that counts the connections it accepts."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.accepted = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def connections_before_now(self) -> int:
        """Connections accepted before this call: a sentinel connection flushes the count."""
        seen = self.accepted
        socket.create_connection(("127.0.0.1", self.port), timeout=5).close()
        wait_for(lambda: self.accepted > seen)
        return self.accepted - 1

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[CountingListener]:
    running = CountingListener()
    yield running
    running.close()


def _refusal(url: str) -> str:
    with pytest.raises(outbound.PrivateAddressRefused) as refused:
        outbound.request(
            "POST",
            url,
            headers={},
            body=b"{}",
            timeout=5,
            max_response_bytes=1024,
            allow_private=False,
        )
    return str(refused.value)


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_internal_host_is_refused_without_connecting(
    listener: CountingListener, host: str, scheme: str
) -> None:
    _refusal(f"{scheme}://{host}:{listener.port}/hook")
    assert listener.connections_before_now() == 0


@pytest.mark.parametrize("host", HOSTS)
def test_refusal_is_the_same_for_open_and_closed_ports(
    listener: CountingListener, host: str
) -> None:
    closed_port = free_port()
    open_text = _refusal(f"http://{host}:{listener.port}/hook")
    closed_text = _refusal(f"http://{host}:{closed_port}/hook")
    assert open_text == closed_text
    assert str(listener.port) not in open_text


def test_every_resolved_address_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    # A name with one public and one private address is refused (no "first one wins").
    answers = [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 80)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", 80)),
    ]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: answers)
    with pytest.raises(outbound.PrivateAddressRefused, match=r"10\.0\.0\.5"):
        outbound.checked_addresses("mixed.example", 80)
