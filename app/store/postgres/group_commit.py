"""Group commit on PostgreSQL: concurrent one-statement writes of a process in one transaction.

Every accepted ingest of a trigger locks the trigger's ``queue_depth`` row
(:mod:`app.store.ingest_records`) until it commits, so ingests of one trigger
follow each other one commit at a time: lock, statement, WAL flush, wake the
next waiter. Under load most backends wait for that row rather than work.

:class:`StatementGroup` lets concurrent callers of
:meth:`~app.store.postgres.database.PostgresDatabase.write_statement` hand in
their statement and wait; one committer (a greenlet under gevent, a thread
otherwise) sends every statement that arrived meanwhile in one transaction, in
pipeline mode: ``BEGIN``, the statements, ``COMMIT`` in one network round trip,
one lock wait and one WAL flush for the whole group. A caller returns only after
the transaction holding its statement has committed (no 2xx before the commit).

* Statements are sent in the order of their callers' ``order`` keys (the
  trigger name), so two processes' groups take the triggers' row locks in the
  same order and cannot deadlock.
* If a statement fails, the transaction rolls back and each statement runs
  again alone in autocommit: its caller gets its own result or error, and one
  caller's failure never fails another's write. A deadlock or serialization
  failure is retried the same way. A lost connection fails every caller of the
  group with 503 (whether the commit happened is unknown; the senders retry and
  the dedup keys answer).
* With one caller in flight a group holds one statement (no waiting for company).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from app.context import start_thread
from app.errors import ServiceUnavailable

if TYPE_CHECKING:
    from app.store.postgres.database import PostgresDatabase

MAX_GROUP = 64


class _Job:
    __slots__ = ("done", "error", "order", "parameters", "result", "sql")

    def __init__(self, sql: str, parameters: Sequence[Any], order: str) -> None:
        self.sql = sql
        self.parameters = parameters
        self.order = order
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class StatementGroup:
    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._pending: list[_Job] = []
        self._wakeup = threading.Event()
        self._started = False

    def run(self, sql: str, parameters: Sequence[Any], order: str) -> Any:
        """Run the statement in the next group; its first row (or None) once committed."""
        job = _Job(sql, parameters, order)
        with self._lock:
            self._pending.append(job)
            if not self._started:
                self._started = True
                start_thread(self._loop, fresh=True, name="hookrunner-pg-group-commit")
        self._wakeup.set()
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.result

    def _loop(self) -> None:
        while True:
            self._wakeup.wait()
            self._wakeup.clear()
            while True:
                with self._lock:
                    group, self._pending = self._pending[:MAX_GROUP], self._pending[MAX_GROUP:]
                if not group:
                    break
                try:
                    self._commit(sorted(group, key=lambda job: job.order))
                finally:
                    for job in group:
                        job.done.set()

    def _commit(self, group: list[_Job]) -> None:
        if len(group) > 1 and self._together(group):
            return
        for job in group:  # alone, in autocommit: each caller gets its own answer
            try:
                with self._db.autocommit() as conn:
                    job.result = conn.execute(job.sql, job.parameters).fetchone()
            except Exception as exc:
                job.error = exc

    def _together(self, group: list[_Job]) -> bool:
        """One pipelined transaction; False when it rolled back (run each alone then)."""
        try:
            with self._db.autocommit() as conn:
                raw = conn.raw  # type: ignore[attr-defined]
                with raw.pipeline(), raw.transaction():
                    cursors = [conn.execute(job.sql, job.parameters) for job in group]
        except ServiceUnavailable as exc:
            if isinstance(exc.__cause__, _rolled_back()):
                return False
            for job in group:  # whether the commit happened is unknown: say so to everyone
                job.error = exc
            return True
        except Exception:  # a statement failed, so the transaction rolled back
            return False
        for job, cursor in zip(group, cursors, strict=True):
            job.result = cursor.fetchone()
        return True


def _rolled_back() -> type[Exception]:
    """psycopg's error for a transaction the server rolled back (deadlock, serialization)."""
    from psycopg.errors import TransactionRollback

    return TransactionRollback
