"""Engine processes next to Gunicorn's web workers: started, watched and stopped by the master.

The default deployment is one command (``gunicorn -c gunicorn.conf.py`` or
``hookrunner serve``): Gunicorn's master runs the web workers, which ingest and
serve the API and live streams, and - through the hooks in
:mod:`app.gunicorn_config` - one engine supervisor
(:mod:`app.execution.supervisor`) with ``ENGINE_PROCESSES`` engine processes,
which run the executions. The pieces:

* :meth:`EngineHost.start` (``when_ready``, before the first worker forks)
  starts the supervisor and a watcher thread in the master that starts it again
  if it dies; the master's SIGTERM/SIGINT/SIGQUIT handlers are wrapped so the
  engines hear the signal at the same moment as the web workers (both drain in
  parallel within ``GUNICORN_GRACEFUL_TIMEOUT``).
* :func:`web_worker_env` (``post_fork``): web workers run no engine of their own.
* :meth:`EngineHost.reload` (``on_reload``, SIGHUP): a rolling restart of the engines.
* :meth:`EngineHost.wait_stopped` (``on_exit``): the master exits after the engines.

Gunicorn's master reaps every child with ``waitpid(-1)``, so the supervisor's
exit status can be lost; the supervisor logs its engines' ends itself.
Everything here runs in the master, which gevent never patches.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("gunicorn.error")

SUPERVISOR_COMMAND = (sys.executable, "-m", "app.execution.supervisor", "--watch-parent")
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
_RESTART_PAUSE_SECONDS = 1.0


def web_worker_env() -> None:
    """In a forked web worker: the app it loads runs no engine (the engine processes do)."""
    os.environ["ENGINE_ENABLED"] = "0"


class EngineHost:
    """The engine supervisor of one Gunicorn master."""

    def __init__(self, processes: int, grace_seconds: float) -> None:
        self.processes = processes
        self.grace_seconds = grace_seconds
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        """Start the supervisor, watch it, and forward the master's stop signals to it."""
        self._spawn()
        for signum in _FORWARDED:
            _wrap_handler(signum, self._forward)
        self._watcher = threading.Thread(target=self._watch, daemon=True, name="engine-host")
        self._watcher.start()

    def reload(self) -> None:
        self._signal(signal.SIGHUP)

    def wait_stopped(self) -> None:
        """Stop the supervisor (if nobody did) and wait for it; kill it when it hangs."""
        self._stopping.set()
        self._signal(signal.SIGTERM)
        with self._lock:
            process = self._process
        if process is None:
            return
        try:
            process.wait(self.grace_seconds + 15)
        except subprocess.TimeoutExpired:
            log.error("engine supervisor did not stop; killing it")
            process.kill()

    # --- inside -----------------------------------------------------------------------

    def _spawn(self) -> None:
        command = [*SUPERVISOR_COMMAND, "--processes", str(self.processes)]
        with self._lock:
            self._process = subprocess.Popen(command)
        log.info("engine supervisor started: %d engine processes", self.processes)

    def _forward(self, signum: int) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            self._stopping.set()
        self._signal(signum)

    def _signal(self, signum: int) -> None:
        with self._lock:
            process = self._process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signum)

    def _watch(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                process = self._process
            if process is not None and process.poll() is not None:
                if self._stopping.is_set():
                    return
                log.error("engine supervisor exited; starting it again")
                self._stopping.wait(_RESTART_PAUSE_SECONDS)
                if not self._stopping.is_set():
                    self._spawn()
            self._stopping.wait(0.5)


def _wrap_handler(signum: int, before: Callable[[int], None]) -> None:
    """Call ``before(signum)``, then the handler that was installed (Gunicorn's)."""
    original = signal.getsignal(signum)

    def handler(sig: int, frame: Any) -> None:
        before(sig)
        if callable(original):
            original(sig, frame)

    signal.signal(signum, handler)
