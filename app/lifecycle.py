"""Start and stop: the engines of one app and the process's shutdown signal.

Gunicorn drops greenlets the app spawned when a worker exits (see
docs/architecture.md, "gevent rules"), so ``gunicorn.conf.py`` calls in here
with the worker's app: on SIGTERM :meth:`Lifecycle.begin_shutdown` makes live
streams end and engines stop claiming; in ``worker_exit`` :meth:`Lifecycle.drain`
lets running executions finish within what is left of ``graceful_timeout`` and
records the rest ``interrupted``. Whatever a hard kill still leaves behind,
the lease reaper reconciles.

:data:`shutting_down` is process-wide on purpose: it tells every stream of the
process that the process is going away.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from app.execution.engine import Engine

shutting_down = threading.Event()


class Lifecycle:
    """The engines one app started, and when their shutdown began."""

    def __init__(self) -> None:
        self._engines: list[Engine] = []
        self._shutdown_started: float | None = None

    def register(self, engine: Engine) -> None:
        self._engines.append(engine)

    def begin_shutdown(self) -> None:
        """Streams return, engines stop claiming new work (running work continues)."""
        if self._shutdown_started is None:
            self._shutdown_started = time.monotonic()
        shutting_down.set()
        for engine in self._engines:
            engine.stop_claiming()

    def drain(self, graceful_timeout: float, margin: float = 3.0) -> None:
        """Wait for running executions within the time left, then interrupt the rest."""
        self.begin_shutdown()
        assert self._shutdown_started is not None
        elapsed = time.monotonic() - self._shutdown_started
        budget = max(0.0, graceful_timeout - elapsed - margin)
        for engine in list(self._engines):
            engine.shutdown(budget)
        self._engines.clear()


_EXTENSION = "hookrunner.lifecycle"


def attach(app: Flask, lifecycle: Lifecycle) -> None:
    """Keep ``lifecycle`` on ``app`` for the Gunicorn hooks (:func:`of`)."""
    app.extensions[_EXTENSION] = lifecycle


def of(app: object) -> Lifecycle | None:
    """The lifecycle of a Gunicorn worker's app; None before it was loaded or for another app.

    It imports nothing: the hooks call it from signal handlers, which may run
    while the worker is still importing the app (a second SIGTERM would then
    meet a partially initialised module).
    """
    extensions = getattr(app, "extensions", None)
    if not isinstance(extensions, dict):
        return None
    found = extensions.get(_EXTENSION)
    return found if isinstance(found, Lifecycle) else None
