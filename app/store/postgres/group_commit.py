"""Group commit on PostgreSQL: concurrent one-statement writes of a process in one transaction.

Every accepted ingest of a trigger locks the trigger's ``queue_entries`` row
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

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from app.errors import ServiceUnavailable
from app.store.batching import Batcher, Job

if TYPE_CHECKING:
    from app.store.postgres.database import PostgresDatabase

MAX_GROUP = 64


class _Job(Job):
    __slots__ = ("order", "parameters", "sql")

    def __init__(self, sql: str, parameters: Sequence[Any], order: str) -> None:
        super().__init__()
        self.sql = sql
        self.parameters = parameters
        self.order = order


class StatementGroup:
    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db
        self._batcher: Batcher[_Job] = Batcher(
            self._commit, MAX_GROUP, "hookrunner-pg-group-commit"
        )

    def run(self, sql: str, parameters: Sequence[Any], order: str) -> Any:
        """Run the statement in the next group; its first row (or None) once committed."""
        return self._batcher.submit(_Job(sql, parameters, order))

    def _commit(self, group: list[_Job]) -> None:
        group = sorted(group, key=lambda job: job.order)  # the same lock order in every process
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
