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

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from app.context import start_thread
from app.store.base import Connection
from app.store.sqlite.database import SQLiteDatabase

T = TypeVar("T")
MAX_BATCH = 256


class _Job(Generic[T]):
    __slots__ = ("done", "error", "fn", "result")

    def __init__(self, fn: Callable[[Connection], T]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None


class GroupCommitter:
    def __init__(self, db: SQLiteDatabase) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._pending: list[_Job[object]] = []
        self._wakeup = threading.Event()
        self._started = False

    def run(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in the next group transaction; return its result once committed."""
        job: _Job[T] = _Job(fn)
        with self._lock:
            self._pending.append(job)  # type: ignore[arg-type]
            if not self._started:
                self._started = True
                start_thread(self._loop, fresh=True, name="hookrunner-group-commit")
        self._wakeup.set()
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[return-value]

    def _loop(self) -> None:
        while True:
            self._wakeup.wait()
            self._wakeup.clear()
            while True:
                with self._lock:
                    batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                if not batch:
                    break
                self._commit(batch)

    def _commit(self, batch: list[_Job[object]]) -> None:
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
        finally:
            for job in batch:
                job.done.set()
