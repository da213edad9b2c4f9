"""Group commit: many requests' writes in one short transaction.

Under load, the commit itself - writing every touched page to the WAL - costs
more than the statements. :class:`GroupCommitter` lets concurrent callers hand
in a *write function* and wait; one committer (a greenlet under gevent, a
thread otherwise) runs every function that arrived meanwhile inside a single
``BEGIN IMMEDIATE ... COMMIT``, each in its own ``SAVEPOINT`` so that one
caller's error rolls back only its own statements. A caller returns only after
the transaction holding its writes has committed, so durability is unchanged:
no 2xx before the commit. With one request in flight a batch holds one job.

Write functions run in the committer, not in the caller: they must only
execute SQL on the connection they are given - no I/O, no logging, no waiting
(docs/architecture.md, gevent rule 2). Their return value (or exception) goes back to the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from app.store.base import Connection
from app.store.batching import Batcher, Job
from app.store.sqlite.database import SQLiteDatabase

T = TypeVar("T")
MAX_BATCH = 256


class _Job(Job):
    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[Connection], object]) -> None:
        super().__init__()
        self.fn = fn


class GroupCommitter:
    def __init__(self, db: SQLiteDatabase) -> None:
        self._db = db
        self._batcher: Batcher[_Job] = Batcher(self._commit, MAX_BATCH, "hookrunner-group-commit")

    def run(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in the next group transaction; return its result once committed."""
        return self._batcher.submit(_Job(fn))  # type: ignore[no-any-return]

    def _commit(self, batch: list[_Job]) -> None:
        try:
            with self._db.write() as conn:
                for job in batch:
                    conn.execute("SAVEPOINT job")
                    try:
                        job.result = job.fn(conn)
                    except Exception as exc:
                        conn.execute("ROLLBACK TO job")
                        job.error = exc
                    conn.execute("RELEASE job")
        except BaseException as exc:  # BEGIN or COMMIT failed: nothing of the batch holds
            for job in batch:
                job.result, job.error = None, job.error or exc
