"""Hand a job to one committer and wait: the queue both stores' group commits share.

A caller :meth:`Batcher.submit`\\ s a :class:`Job` and blocks (cooperatively under
gevent); one committer thread (a greenlet under gevent), started with the first
job, takes every job that arrived meanwhile - at most ``max_batch`` at a time -
and hands the batch to the store's ``commit`` function, which fills in each
job's ``result`` or ``error``. Once ``commit`` returns (or raises), every job of
the batch is released; the caller then gets its result or its error raised.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from app.context import start_thread


class Job:
    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


J = TypeVar("J", bound=Job)


class Batcher(Generic[J]):
    def __init__(self, commit: Callable[[list[J]], None], max_batch: int, name: str) -> None:
        self._commit = commit
        self._max_batch = max_batch
        self._name = name
        self._lock = threading.Lock()
        self._pending: list[J] = []
        self._wakeup = threading.Event()
        self._started = False

    def submit(self, job: J) -> Any:
        """Queue ``job`` for the next batch; its result once committed (or raise its error)."""
        with self._lock:
            self._pending.append(job)
            if not self._started:
                self._started = True
                start_thread(self._loop, fresh=True, name=self._name)
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
                    batch = self._pending[: self._max_batch]
                    self._pending = self._pending[self._max_batch :]
                if not batch:
                    break
                try:
                    self._commit(batch)
                finally:
                    for job in batch:
                        job.done.set()
