"""The store seam: what every store (SQLite, PostgreSQL) offers the rest of Hookrunner.

Services and routes see only :class:`Database` and the per-table SQL modules of
``app.store``; they never learn which store runs. Most SQL is shared and written
portably (``?`` placeholders, ``ON CONFLICT``, ``RETURNING``, TEXT ids, ISO 8601
timestamps as text); where a dialect needs its own SQL (claims, migrations'
bookkeeping) the store module asks :attr:`Database.dialect`.

Protocol every implementation keeps:

* :meth:`Database.read` lends a connection in autocommit mode for reads.
* :meth:`Database.write` runs its block in one short transaction that takes the
  write locks it needs up front; commit on success, roll back on any error.
  Nothing may yield (network, sleep, subprocess) inside it.
* :meth:`Database.write_statement` runs a write that is one statement; its
  caller only needs it committed, not alone (PostgreSQL groups concurrent ones).
* :meth:`Database.write_grouped` runs a write function whose caller only needs
  it committed, not alone: SQLite shares one commit among concurrent callers
  (group commit), PostgreSQL runs a plain transaction on a pooled connection.
  The function only executes SQL on the connection it is given (no I/O, no
  logging, no waiting). :meth:`Database.ingest` (dedup claim, delivery, queued
  execution) and an execution's outcome are written this way.
* A driver error that means "the store is unavailable" becomes
  :class:`~app.errors.ServiceUnavailable`; a constraint violation becomes
  :class:`IntegrityError`, whatever the driver.
* Rows support ``row[0]`` and ``row["column"]`` (and ``dict(row)``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Protocol, TypeVar

T = TypeVar("T")


class IntegrityError(Exception):
    """A uniqueness or foreign-key constraint refused a write (any store)."""


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """The part of a DB-API connection the SQL modules use (``?`` placeholders)."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, seq_of_parameters: Sequence[Sequence[Any]], /) -> Cursor: ...


class Database(ABC):
    """One store: its connections, its transactions and its dialect."""

    dialect: ClassVar[str]

    @abstractmethod
    def read(self) -> AbstractContextManager[Connection]:
        """Borrow a connection for autocommit reads."""

    @abstractmethod
    def write(self) -> AbstractContextManager[Connection]:
        """Run the block in one short transaction; commit or roll back."""

    def write_statement(
        self, sql: str, parameters: Sequence[Any], *, order: str | None = ""
    ) -> Any:
        """Run one write statement; its first row (or None) once committed.

        A store may commit it together with other callers' statements (PostgreSQL:
        group commit, sent in the order of their ``order`` keys, so that groups
        take their locks in one order). ``order=None`` says no such order exists -
        the statement locks rows that other writers lock in another order - so a
        store whose transactions can deadlock runs it in a transaction of its own.
        The default runs it in :meth:`write`.
        """
        with self.write() as conn:
            return conn.execute(sql, parameters).fetchone()

    def write_grouped(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in a write transaction (maybe shared); its result once committed."""
        with self.write() as conn:
            return fn(conn)

    def ingest(self, fn: Callable[[Connection], T]) -> T:
        """Run one ingest transaction; return ``fn``'s result once it is committed."""
        return self.write_grouped(fn)

    @abstractmethod
    def describe(self) -> str:
        """Where the data is, for people (no credentials)."""

    @abstractmethod
    def table_exists(self, conn: Connection, name: str) -> bool: ...

    def lock_migrations(self, conn: Connection) -> None:  # noqa: B027 - optional hook
        """Serialise migration runs of several processes (inside ``write``)."""

    def notification_backend(self) -> Any:
        """A backend carrying notifications to other processes, or None (poll instead)."""
        return None

    def start_background(self) -> None:  # noqa: B027 - optional hook
        """Start the store's own background work (e.g. WAL checkpoints)."""

    @abstractmethod
    def close(self) -> None:
        """Release every connection (the store reopens them on next use)."""


def rows_as_dicts(rows: Iterator[Any] | list[Any]) -> list[dict[str, Any]]:
    return [dict(row) for row in rows]
