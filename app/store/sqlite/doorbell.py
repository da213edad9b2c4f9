"""Notifications between the processes of one host over Unix datagram sockets.

:class:`DoorbellBackend` is the notifier backend of the SQLite store (see
:mod:`app.live.notifier`); every process using one database file - web
workers, engine processes, CLI commands - shares one *doorbell directory*:

* Each process binds one datagram socket there, named after its pid, a
  random suffix and its *role* (``<pid>-<suffix>.<role>.sock``: an engine
  process, a web worker, or both in one), and a listener thread (a greenlet
  under gevent) hands every topic it receives to the notifier.
* :meth:`~DoorbellBackend.publish` hands the topic to a
  :class:`~app.live.publisher.TopicPublisher`, whose sender thread (a greenlet
  under gevent) sends everything published meanwhile as one datagram - topics
  separated by newlines - to every other socket in the
  directory whose role acts on at least one of them (the notifier's
  ``audience``: an engine is not woken by another engine's output lines, a web
  worker not by queued work), without blocking: a full receive buffer or a
  peer that just went away drops the hint (followers poll as well, so a lost
  hint only delays). A socket named without a role hears everything.
  The execution ids, the feed and the work topic of a busy engine thus cost one
  ``sendto`` per peer per few milliseconds, not one per topic.
  A socket nobody listens on any more (its process was killed) answers
  ``ECONNREFUSED`` and is removed.
* The directory listing is cached for :data:`PEERS_REFRESH_SECONDS`, so a
  burst of output flushes costs one ``sendto`` per peer and no ``listdir``.

The directory sits next to the database file (``<db>.doorbell/``) when that path
is short enough for a socket address (108 bytes on Linux), otherwise in the
temporary directory under a name derived from the database path. It is created
``0700``: only the service's own user can ring.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from app.context import start_thread
from app.live.publisher import TopicPublisher

log = logging.getLogger(__name__)

PEERS_REFRESH_SECONDS = 1.0
_SUN_PATH_MAX = 107  # sockaddr_un.sun_path is 108 bytes with the terminating NUL
_NAME_ROOM = 40  # "<pid>-<suffix>.sock" with room to spare
_MAX_DATAGRAM = 4096
ANY_ROLE = "all"  # a socket of this role (or of none) hears every topic


def doorbell_directory(database_path: str) -> Path:
    """Where the processes using ``database_path`` ring each other (same for all of them)."""
    resolved = Path(database_path).resolve()
    beside = resolved.with_name(resolved.name + ".doorbell")
    if len(os.fsencode(str(beside))) + _NAME_ROOM <= _SUN_PATH_MAX:
        return beside
    digest = hashlib.sha256(os.fsencode(str(resolved))).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"hookrunner-{os.getuid()}-{digest}.doorbell"


class DoorbellBackend:
    """Publish topics to the other processes of this host; deliver theirs to us."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.deliver: Callable[[str], None] = lambda _topic: None
        self.audience: Callable[[str], tuple[str, ...]] | None = None  # None: every role
        self._path: Path | None = None
        self._receiver: socket.socket | None = None
        self._sender: socket.socket | None = None
        self._peers: list[tuple[str, str]] = []  # (socket path, role)
        self._peers_read_at = 0.0
        self._lock = threading.Lock()
        self._publisher = TopicPublisher(self._ring_all, name="hookrunner-doorbell-send")
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- lifecycle ----------------------------------------------------------------

    def start(
        self,
        deliver: Callable[[str], None],
        *,
        listen: bool = True,
        role: str = ANY_ROLE,
        audience: Callable[[str], tuple[str, ...]] | None = None,
    ) -> None:
        """Bind this process's socket and deliver other processes' topics to ``deliver``.

        ``role`` names what this process acts on; ``audience(topic)`` the roles
        a topic is rung to (default: all). With ``listen=False`` (a CLI
        command) nothing is bound: the process only rings the others. A
        directory that cannot be created or bound leaves the backend silent
        (logged once): everything still works by polling.
        """
        self.deliver = deliver
        self.audience = audience
        path, receiver = None, None
        try:
            if listen:
                self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                name = f"{os.getpid()}-{secrets.token_hex(4)}.{_safe_role(role)}.sock"
                path = self.directory / name
                receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                receiver.bind(str(path))
                receiver.settimeout(1.0)  # wakes to notice stop()
            # Never blocks, so the unpatched socket does: it skips gevent's wrapper.
            sender = _native_socket()(socket.AF_UNIX, socket.SOCK_DGRAM)
            sender.setblocking(False)
        except OSError as exc:
            if receiver is not None:
                receiver.close()
            log.warning("doorbell unavailable (%s); other processes are polled", exc)
            return
        self._path, self._receiver, self._sender = path, receiver, sender
        self._publisher.start()
        if receiver is not None:
            listener = start_thread(self._listen_loop, fresh=True, name="hookrunner-doorbell")
            self._threads = [listener]

    def stop(self) -> None:
        """Ring what is still pending, then close the sockets (idempotent)."""
        self._stopped.set()
        self._publisher.stop()
        for thread in self._threads:
            thread.join(3)
        for sock in (self._receiver, self._sender):
            if sock is not None:
                sock.close()
        if self._path is not None:
            with contextlib.suppress(OSError):
                self._path.unlink()
        self._receiver = self._sender = None

    # --- publishing -----------------------------------------------------------------

    def publish(self, topic: str) -> None:
        """Ring every other process with ``topic`` soon; never blocks, never raises."""
        if self._sender is None:
            return
        self._publisher.publish(topic)

    def _ring_all(self, topics: list[str]) -> None:
        """Ring each peer with the topics its role acts on (one datagram per role)."""
        by_role: dict[str, list[bytes]] = {}
        for peer, role in self._current_peers():
            datagrams = by_role.get(role)
            if datagrams is None:
                wanted = [t for t in topics if self._wants(role, t)]
                datagrams = by_role[role] = _datagrams(wanted) if wanted else []
            for datagram in datagrams:
                self._ring(datagram, peer)

    def _wants(self, role: str, topic: str) -> bool:
        return role == ANY_ROLE or self.audience is None or role in self.audience(topic)

    def _ring(self, data: bytes, peer: str) -> None:
        sender = self._sender
        if sender is None:
            return
        try:
            sender.sendto(data, peer)
        except (BlockingIOError, InterruptedError):
            pass  # that peer's buffer is full: it has plenty to read already
        except OSError as exc:
            if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
                self._forget(peer, remove=exc.errno == errno.ECONNREFUSED)

    def _current_peers(self) -> list[tuple[str, str]]:
        now = time.monotonic()
        if now - self._peers_read_at < PEERS_REFRESH_SECONDS:
            return self._peers
        own = str(self._path) if self._path is not None else None
        try:
            names = os.listdir(self.directory)
        except OSError:
            names = []
        peers = [
            (str(self.directory / name), _role_in(name)) for name in names if name.endswith(".sock")
        ]
        with self._lock:
            self._peers = [(path, role) for path, role in peers if path != own]
            self._peers_read_at = now
        return self._peers

    def _forget(self, peer: str, *, remove: bool) -> None:
        with self._lock:
            self._peers = [known for known in self._peers if known[0] != peer]
        if remove:  # a socket file whose process died
            with contextlib.suppress(OSError):
                os.unlink(peer)

    # --- listening --------------------------------------------------------------------

    def _listen_loop(self) -> None:
        receiver = self._receiver
        assert receiver is not None
        while not self._stopped.is_set():
            try:
                data = receiver.recv(_MAX_DATAGRAM)
            except TimeoutError:
                continue
            except OSError:
                if self._stopped.is_set():
                    return
                log.warning("doorbell receive failed", exc_info=True)
                self._stopped.wait(0.5)
                continue
            for topic in data.decode(errors="replace").split("\n"):
                if not topic:
                    continue
                try:
                    self.deliver(topic)
                except Exception:
                    log.exception("notification handler failed")


def _safe_role(role: str) -> str:
    return role if role.isalnum() else ANY_ROLE


def _role_in(name: str) -> str:
    """The role in a socket's name; one named without (an older process) hears everything."""
    parts = name.split(".")
    return parts[-2] if len(parts) == 3 and parts[-2].isalnum() else ANY_ROLE


def _datagrams(topics: list[str]) -> list[bytes]:
    """``topics`` joined by newlines into as few datagrams as fit (a longer topic is cut)."""
    datagrams: list[bytes] = []
    current = b""
    for topic in topics:
        data = topic.replace("\n", " ").encode()[:_MAX_DATAGRAM]
        if current and len(current) + 1 + len(data) > _MAX_DATAGRAM:
            datagrams.append(current)
            current = b""
        current = current + b"\n" + data if current else data
    if current:
        datagrams.append(current)
    return datagrams


def _native_socket() -> type[socket.socket]:
    """The standard library's socket class, even in a gevent-patched process."""
    from gevent import monkey

    return monkey.get_original("socket", "socket")  # type: ignore[no-any-return]
