"""The SQLite store: connections and the transaction rules that keep them safe under gevent.

Protocol (docs/architecture.md, gevent rule 2; the seam is :mod:`app.store.base`):

* Every write runs in :meth:`Database.write`: a short explicit
  ``BEGIN IMMEDIATE ... COMMIT``, serialised per process by a lock. A deferred
  ``BEGIN`` that reads then writes can fail with "database is locked" no matter
  the busy timeout, so writes always take the write lock up front.
* Nothing may yield (network, sleep, subprocess) inside ``write()``: holding
  the write lock across I/O would stall every other writer.
* Waiting for the write lock held by another process never blocks the gevent
  hub: ``BEGIN IMMEDIATE`` is tried with sqlite's busy wait off and retried
  after cooperative sleeps, up to ``busy_timeout`` (then 503). Reads are not
  held up by a writer in WAL mode.
* Reads run in autocommit mode through :meth:`Database.read` (WAL lets them
  proceed while another process writes).
* Each connection gets ``journal_mode=WAL``, ``synchronous`` (NORMAL or FULL),
  ``foreign_keys=ON`` and a ``busy_timeout`` well below Gunicorn's timeout.

Connections are pooled per process and borrowed for one ``read``/``write``
block at a time, so no request or stream holds one while it waits on a client.

WAL checkpoints (which fsync the database file) would otherwise run inside
whichever commit crosses the auto-checkpoint size and stall the whole gevent
worker. :meth:`Database.start_checkpointer` turns automatic checkpoints off
for this process's connections and runs ``PRAGMA wal_checkpoint(PASSIVE)``
from a native OS thread instead; sqlite releases the GIL while it works, so
requests keep flowing. Of all the processes on one file (web workers, engine
processes) only the one holding an exclusive ``flock`` on
``<db>.checkpoint.lock`` checkpoints; the others try for the lock each round, so
one takes over when that process ends.
Driver errors that mean "the store is unavailable" become
:class:`~app.errors.ServiceUnavailable` (503 with ``Retry-After``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from app.errors import ServiceUnavailable
from app.store.base import Connection, Database, IntegrityError
from app.store.sqlite.doorbell import DoorbellBackend, doorbell_directory

if TYPE_CHECKING:
    from app.store.sqlite.group_commit import GroupCommitter

T = TypeVar("T")
_POOL_MAX = 16
_LOCK_RETRY_FIRST_SECONDS = 0.001
_LOCK_RETRY_MAX_SECONDS = 0.05


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    """Whether ``exc`` means another connection holds the lock (SQLITE_BUSY/LOCKED)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


def _create_private(path: Path) -> None:
    """Make the database's directory (0700) and file (0600) when they do not exist yet.

    The file holds trigger secrets and the server's signing key; SQLite gives its
    ``-wal`` and ``-shm`` files the database file's mode. Whatever exists already
    (a directory made by systemd's ``StateDirectory``, a file from before) is left
    as it is.
    """
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        with contextlib.suppress(FileExistsError):  # another process just made it
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))


class SQLiteDatabase(Database):
    """A SQLite database file with a small connection pool and a write lock."""

    dialect = "sqlite"

    def __init__(self, path: str, *, synchronous: str = "NORMAL", busy_timeout_ms: int = 5000):
        self.path = path
        self.synchronous = synchronous
        self.busy_timeout_ms = busy_timeout_ms
        # Under gevent's monkey patching threading.Lock is a gevent semaphore, so
        # this serialises greenlets and native threads alike.
        self._write_lock = threading.Lock()
        self._pool: list[sqlite3.Connection] = []
        self._pool_lock = threading.Lock()
        self._checkpointer: _Checkpointer | None = None
        self._committer: GroupCommitter | None = None
        self._doorbell: DoorbellBackend | None = None
        if path != ":memory:":
            _create_private(Path(path))

    def connect(self) -> sqlite3.Connection:
        """Open a new configured connection (autocommit; transactions are explicit)."""
        conn = sqlite3.connect(
            self.path,
            timeout=self.busy_timeout_ms / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
        if self._checkpointer is not None:
            conn.execute("PRAGMA wal_autocheckpoint = 0")
        return conn

    @contextmanager
    def _borrow(self) -> Iterator[sqlite3.Connection]:
        with self._pool_lock:
            conn = self._pool.pop() if self._pool else None
        try:
            if conn is None:
                conn = self.connect()
            yield conn
        except sqlite3.OperationalError as exc:
            raise ServiceUnavailable(f"store unavailable: {exc}") from exc
        finally:
            if conn is not None:
                with self._pool_lock:
                    if len(self._pool) < _POOL_MAX and not conn.in_transaction:
                        self._pool.append(conn)
                        conn = None
                if conn is not None:
                    conn.close()

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """Borrow a connection for autocommit reads."""
        with self._borrow() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """Run the block in one ``BEGIN IMMEDIATE`` transaction; commit or roll back.

        Waiting for another process's write lock is cooperative (see
        :meth:`_begin_immediate`); after ``busy_timeout_ms`` the store counts as
        unavailable (:class:`~app.errors.ServiceUnavailable`).
        """
        with self._write_lock, self._borrow() as conn:
            self._begin_immediate(conn)
            try:
                yield conn
            except sqlite3.IntegrityError as exc:
                conn.execute("ROLLBACK")
                raise IntegrityError(str(exc)) from exc
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def write_statement(
        self, sql: str, parameters: Sequence[Any], *, order: str | None = ""
    ) -> Any:
        """The statement in the next group commit, like :meth:`write_grouped`.

        Whatever ``order`` says: one write lock serialises SQLite's writers, so a
        shared transaction cannot deadlock.
        """
        return self.write_grouped(lambda conn: conn.execute(sql, parameters).fetchone())

    def write_grouped(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in the next group commit (:mod:`app.store.sqlite.group_commit`)."""
        if self._committer is None:
            from app.store.sqlite.group_commit import GroupCommitter

            self._committer = GroupCommitter(self)
        return self._committer.run(fn)

    def describe(self) -> str:
        return f"sqlite:///{Path(self.path).resolve()}" if self.path != ":memory:" else "sqlite://"

    def table_exists(self, conn: Connection, name: str) -> bool:
        row = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).fetchone()
        return row is not None

    def start_background(self) -> None:
        self.start_checkpointer()

    def notification_backend(self) -> DoorbellBackend | None:
        """This process's doorbell to the other processes on this file (created on first use)."""
        if self.path == ":memory:":
            return None
        if self._doorbell is None:
            self._doorbell = DoorbellBackend(doorbell_directory(self.path))
        return self._doorbell

    def _begin_immediate(self, conn: sqlite3.Connection) -> None:
        """Take the database write lock without blocking other greenlets while it is held.

        sqlite's own busy wait sleeps inside the C library, which under gevent
        freezes every greenlet of the worker for as long as another process
        holds the lock. So the attempt is made with the busy timeout off and,
        while the lock is taken, retried after cooperative sleeps (1 ms growing
        to 50 ms) until ``busy_timeout_ms`` has passed; then the last
        "database is locked" error is raised. The connection's busy timeout is
        restored for the statements of the transaction.
        """
        deadline = time.monotonic() + self.busy_timeout_ms / 1000
        pause = _LOCK_RETRY_FIRST_SECONDS
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            while True:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if not _is_busy(exc) or time.monotonic() + pause > deadline:
                        raise
                time.sleep(pause)  # gevent's sleep under monkey patching: other greenlets run
                pause = min(pause * 2, _LOCK_RETRY_MAX_SECONDS)
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")

    def start_checkpointer(self, interval_seconds: float = 1.0) -> None:
        """Checkpoint the WAL from a background OS thread (call before first use)."""
        if self._checkpointer is None and self.path != ":memory:":
            self._checkpointer = _Checkpointer(self, interval_seconds)
            self._checkpointer.start()

    def close(self) -> None:
        """Close every pooled connection (the pool refills on next use)."""
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        if self._doorbell is not None:
            self._doorbell.stop()
            self._doorbell = None
        with self._pool_lock:
            pool, self._pool = self._pool, []
        for conn in pool:
            conn.close()


def _native(module: str, name: str) -> Any:
    """The unpatched ``module.name``: a real OS thread or sleep even under gevent."""
    from gevent import monkey

    return monkey.get_original(module, name)


class _Checkpointer:
    """Runs passive WAL checkpoints on its own connection in a native thread."""

    def __init__(self, db: SQLiteDatabase, interval_seconds: float) -> None:
        self._db = db
        self._interval = interval_seconds
        self._stop = False
        self.skipped = 0

    def start(self) -> None:
        _native("_thread", "start_new_thread")(self._run, ())

    def stop(self) -> None:
        self._stop = True

    def _run(self) -> None:
        # Only native primitives here (no logging, no gevent locks): this is not a greenlet.
        sleep = _native("time", "sleep")
        conn = sqlite3.connect(self._db.path, timeout=self._db.busy_timeout_ms / 1000)
        lock = _CheckpointLock(self._db.path + ".checkpoint.lock")
        try:
            while not self._stop:
                sleep(self._interval)
                if not lock.held():
                    continue  # another process checkpoints this file
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error:  # busy or locked: the next round catches up
                    self.skipped += 1
        finally:
            lock.release()
            conn.close()


class _CheckpointLock:
    """An exclusive ``flock`` deciding which process checkpoints a database file.

    A lock file that cannot be opened (read-only directory) counts as held:
    every process then checkpoints, as before there was a lock.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._fd: int | None = None

    def held(self) -> bool:
        if self._fd is not None:
            return True
        try:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None
