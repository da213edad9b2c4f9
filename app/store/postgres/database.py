"""The PostgreSQL store: a psycopg 3 connection pool per process.

Same protocol as every store (:mod:`app.store.base`), with PostgreSQL's means:

* One :class:`psycopg_pool.ConnectionPool` per process, ``DATABASE_POOL_SIZE``
  connections at most, opened lazily. Connections are in autocommit mode;
  :meth:`PostgresDatabase.write` runs its block in one transaction. No
  connection is shared between greenlets or threads: each block borrows one.
* The SQL modules write ``?`` placeholders (shared with SQLite); they become
  ``%s`` here, outside quoted literals, and a literal ``%`` becomes ``%%``.
* Under gevent, psycopg must be imported *after* monkey patching: it picks its
  wait function once, at import, and a C-level wait would block every greenlet
  of the worker. :func:`check_wait_function` refuses to run with the blocking
  one inside a patched process (Gunicorn's gevent worker patches before it
  loads the app, so importing psycopg lazily here is enough).
* A borrowed connection is checked (one empty round trip) only when it has been
  idle for :data:`CHECK_IDLE_SECONDS` or more: a busy worker's connections were
  just used, and checking each borrow would add a round trip to every
  transaction. A connection that broke since its last use fails that one block
  (503); the pool then replaces it.
* :meth:`PostgresDatabase.write_statement` (an accepted ingest) goes through this
  process's group commit (:mod:`app.store.postgres.group_commit`): concurrent
  statements share one pipelined transaction.
* Every pooled connection runs at READ COMMITTED, whatever the server's or the
  database's default: claims and admission count after taking an advisory lock
  and need the snapshot of the statement that follows it.
* Connection failures become :class:`~app.errors.ServiceUnavailable` (503 with
  ``Retry-After``); constraint violations :class:`~app.store.base.IntegrityError`.
"""

from __future__ import annotations

import functools
import re
import sys
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from app.config import describe_store
from app.errors import ServiceUnavailable
from app.store.base import Connection, Cursor, Database, IntegrityError

_QUOTED_OR_MARK = re.compile(r"'(?:[^']|'')*'|\?|%")
MIGRATION_LOCK_KEY = 7_250_437_610  # pg_advisory_xact_lock key of the migration runner
CHECK_IDLE_SECONDS = 5.0
_READ_COMMITTED = "SET default_transaction_isolation = 'read committed'"


@functools.lru_cache(maxsize=2048)
def to_pyformat(sql: str) -> str:
    """``?`` placeholders as ``%s`` (quoted literals untouched), ``%`` as ``%%``."""

    def swap(match: re.Match[str]) -> str:
        found = match.group(0)
        if found == "?":
            return "%s"
        if found == "%":
            return "%%"
        return found.replace("%", "%%")

    return _QUOTED_OR_MARK.sub(swap, sql)


class _Row(tuple[Any, ...]):
    """A row like ``sqlite3.Row``: by position, by column name, and ``dict(row)``."""

    __slots__ = ()
    _index: dict[str, int] = {}  # noqa: RUF012 - set per column list by _row_class

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


@functools.lru_cache(maxsize=512)
def _row_class(names: tuple[str, ...]) -> type[_Row]:
    return type("Row", (_Row,), {"__slots__": (), "_index": {n: i for i, n in enumerate(names)}})


def _row_factory(cursor: Any) -> Any:
    from psycopg.rows import no_result

    if cursor.description is None:
        return no_result
    return _row_class(tuple(column.name for column in cursor.description))


class _Connection:
    """A pooled psycopg connection speaking the SQL modules' ``?`` dialect."""

    __slots__ = ("raw",)

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        if parameters:
            return self.raw.execute(to_pyformat(sql), tuple(parameters))  # type: ignore[no-any-return]
        return self.raw.execute(sql)  # type: ignore[no-any-return]

    def executemany(self, sql: str, seq_of_parameters: Sequence[Sequence[Any]], /) -> Cursor:
        cursor = self.raw.cursor()
        cursor.executemany(to_pyformat(sql), [tuple(p) for p in seq_of_parameters])
        return cursor  # type: ignore[no-any-return]


def check_wait_function() -> str:
    """psycopg's wait function; raises RuntimeError if it would block a gevent worker."""
    import psycopg.waiting

    name = str(getattr(psycopg.waiting.wait, "__name__", "unknown"))
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("select") and name == "wait_c":
        raise RuntimeError(
            "psycopg was imported before gevent patched this process, so every query would"
            " block the worker; import psycopg only after monkey patching (no --preload,"
            " nothing importing it in gunicorn.conf.py)"
        )
    return name


class PostgresDatabase(Database):
    dialect = "postgresql"

    def __init__(self, url: str, *, pool_size: int = 10, connect_timeout: int = 5) -> None:
        self.url = url.replace("postgres://", "postgresql://", 1)
        self.pool_size = pool_size
        self.connect_timeout = connect_timeout
        self._pool: Any = None
        self._notify: Any = None
        self._group: Any = None
        self._last_used: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()

    def _get_pool(self) -> Any:
        if self._pool is None:
            self.wait_function = check_wait_function()
            import psycopg
            from psycopg_pool import ConnectionPool

            def configure(conn: psycopg.Connection[Any]) -> None:
                conn.row_factory = _row_factory
                # Claims and admission rely on a fresh snapshot per statement (after the
                # advisory lock): READ COMMITTED whatever the server's default is.
                conn.execute(_READ_COMMITTED)

            pool = ConnectionPool(
                self.url,
                min_size=1,
                max_size=self.pool_size,
                kwargs={"autocommit": True, "connect_timeout": self.connect_timeout},
                configure=configure,
                check=self._check_if_idle,
                timeout=self.connect_timeout * 2,
                open=False,
                name="hookrunner",
            )
            pool.open(wait=False)
            self._pool = pool
        return self._pool

    def _check_if_idle(self, conn: Any) -> None:
        """The pool's check on borrowing: a round trip only for a connection idle a while."""
        used = self._last_used.get(conn)
        if used is None or time.monotonic() - used >= CHECK_IDLE_SECONDS:
            from psycopg_pool import ConnectionPool

            ConnectionPool.check_connection(conn)

    @contextmanager
    def _borrow(self) -> Iterator[Any]:
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            with self._get_pool().connection() as raw:
                yield raw
                self._last_used[raw] = time.monotonic()
        except PoolTimeout as exc:
            raise ServiceUnavailable("store unavailable: no database connection") from exc
        except psycopg.OperationalError as exc:
            raise ServiceUnavailable(f"store unavailable: {type(exc).__name__}") from exc

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self._borrow() as raw:
            yield _Connection(raw)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        import psycopg

        with self._borrow() as raw:
            try:
                with raw.transaction():
                    yield _Connection(raw)
            except psycopg.errors.IntegrityError as exc:
                raise IntegrityError(str(exc)) from exc

    def write_statement(
        self, sql: str, parameters: Sequence[Any], *, order: str | None = ""
    ) -> Any:
        """The statement in this process's next group commit (see ``group_commit.py``).

        With ``order=None`` it runs alone, in autocommit: one round trip, and a
        transaction that holds no other caller's locks.
        """
        if order is None:
            with self.autocommit() as conn:
                return conn.execute(sql, parameters).fetchone()
        if self._group is None:
            from app.store.postgres.group_commit import StatementGroup

            self._group = StatementGroup(self)
        return self._group.run(sql, parameters, order)

    @contextmanager
    def autocommit(self) -> Iterator[Connection]:
        """A connection on which each statement is its own transaction."""
        import psycopg

        with self._borrow() as raw:
            try:
                yield _Connection(raw)
            except psycopg.errors.IntegrityError as exc:
                raise IntegrityError(str(exc)) from exc

    def describe(self) -> str:
        return describe_store(self.url)

    def table_exists(self, conn: Connection, name: str) -> bool:
        row = conn.execute("SELECT to_regclass(?) IS NOT NULL", (name,)).fetchone()
        return bool(row[0])

    def lock_migrations(self, conn: Connection) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK_KEY,))

    def notification_backend(self) -> Any:
        """This process's LISTEN/NOTIFY backend (one per store), created on first use."""
        if self._notify is None:
            from app.store.postgres.notify import PgNotifyBackend

            self._get_pool()  # checks the wait function first
            self._notify = PgNotifyBackend(self.url, self)
        return self._notify

    def close(self) -> None:
        if self._notify is not None:
            self._notify.stop()
            self._notify = None
        if self._pool is not None:
            self._pool.close(timeout=5)
            self._pool = None
