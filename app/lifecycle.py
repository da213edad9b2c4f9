"""Process-wide start and stop: the engines of this process and the shutdown signal.

Gunicorn drops greenlets the app spawned when a worker exits (DESIGN rule 4),
so ``gunicorn.conf.py`` calls in here: on SIGTERM :func:`begin_shutdown` makes
live streams end and engines stop claiming; in ``worker_exit``
:func:`drain` lets running executions finish within what is left of
``graceful_timeout`` and records the rest ``interrupted``. Whatever a hard kill
still leaves behind, the lease reaper reconciles.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.execution.engine import Engine

shutting_down = threading.Event()
_engines: list[Engine] = []
_shutdown_started: list[float] = []


def register(engine: Engine) -> None:
    _engines.append(engine)


def begin_shutdown() -> None:
    """Streams return, engines stop claiming new work (running work continues)."""
    if not shutting_down.is_set():
        _shutdown_started.append(time.monotonic())
        shutting_down.set()
    for engine in _engines:
        engine.stop_claiming()


def drain(graceful_timeout: float, margin: float = 3.0) -> None:
    """Wait for running executions within the time left, then interrupt the rest."""
    begin_shutdown()
    elapsed = time.monotonic() - _shutdown_started[0]
    budget = max(0.0, graceful_timeout - elapsed - margin)
    for engine in list(_engines):
        engine.shutdown(budget)
    _engines.clear()
