"""The engine supervisor: keeps N engine processes running, restarts them, stops them.

``hookrunner engine`` runs it in the foreground; the default deployment
(``gunicorn -c gunicorn.conf.py``, ``hookrunner serve``) starts it from
Gunicorn's master next to the web workers (:mod:`app.execution.engine_host`). It is a
plain, unpatched Python process whose only children are engine processes
(``python -m app.execution.process``), so it reaps them itself and logs how
each one ended.

* An engine that exits while the supervisor is not stopping is restarted; one
  that keeps dying young (within :data:`YOUNG_SECONDS`) is restarted after a
  backoff doubling from one second to :data:`MAX_BACKOFF_SECONDS`.
* SIGTERM: every engine gets SIGTERM and drains (running executions finish
  within the grace period); whatever is still alive ``grace + KILL_MARGIN``
  seconds later is killed. SIGINT/SIGQUIT: engines stop at once (``interrupted``).
* SIGHUP: a rolling restart - each engine is replaced by a new one started
  first, the old one drains in the background (new code and settings, no gap).
* With ``watch_parent`` (started by Gunicorn's master) the supervisor stops
  gracefully when its parent goes away, so a killed master leaves nothing behind.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

log = logging.getLogger("app.execution.supervisor")

ENGINE_COMMAND = (sys.executable, "-m", "app.execution.process")
YOUNG_SECONDS = 10.0
MAX_BACKOFF_SECONDS = 30.0
KILL_MARGIN_SECONDS = 5.0
TICK_SECONDS = 0.1


@dataclass
class _Slot:
    """One of the N places an engine process runs in."""

    index: int
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    backoff: float = 0.0
    restart_at: float = 0.0


class EngineSupervisor:
    def __init__(
        self,
        processes: int,
        grace_seconds: float,
        *,
        command: Sequence[str] = ENGINE_COMMAND,
        env: Mapping[str, str] | None = None,
        watch_parent: bool = False,
    ) -> None:
        if processes < 1:
            raise ValueError("an engine supervisor runs at least one engine process")
        self.slots = [_Slot(index) for index in range(processes)]
        self.grace_seconds = grace_seconds
        self.command = list(command)
        self.env = dict(os.environ if env is None else env)
        self.env["ENGINE_ENABLED"] = "1"
        self.watch_parent = watch_parent
        self._parent = os.getppid()
        self._retiring: list[subprocess.Popen[bytes]] = []
        self._stop_signal: int | None = None
        self._restart_requested = False

    # --- running --------------------------------------------------------------------

    def run(self) -> int:
        """Supervise until told to stop; 0 once every engine has exited."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGQUIT, self._on_signal)
        signal.signal(signal.SIGHUP, self._on_signal)
        log.info("engine supervisor started", extra={"engine_processes": len(self.slots)})
        for slot in self.slots:
            self._start(slot)
        while self._stop_signal is None:
            time.sleep(TICK_SECONDS)
            if self.watch_parent and os.getppid() != self._parent:
                log.warning("the server that started the engines went away; stopping them")
                self._stop_signal = signal.SIGTERM
                break
            if self._restart_requested:
                self._restart_requested = False
                self._rolling_restart()
            self._reap_retiring()
            self._keep_running()
        return self._stop_all(self._stop_signal or signal.SIGTERM)

    def _on_signal(self, signum: int, _frame: object) -> None:
        if signum == signal.SIGHUP:
            self._restart_requested = True
        elif self._stop_signal is None or signum != signal.SIGTERM:
            self._stop_signal = signum  # SIGINT/SIGQUIT after SIGTERM hurries the stop

    def _start(self, slot: _Slot) -> None:
        slot.process = subprocess.Popen(self.command, env=self.env)
        slot.started_at = time.monotonic()
        log.info("engine process spawned", extra={"slot": slot.index, "pid": slot.process.pid})

    def _keep_running(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            process = slot.process
            if process is not None:
                status = process.poll()
                if status is None:
                    continue
                lived = now - slot.started_at
                slot.process = None
                slot.backoff = (
                    min(max(slot.backoff * 2, 1.0), MAX_BACKOFF_SECONDS)
                    if lived < YOUNG_SECONDS
                    else 0.0
                )
                slot.restart_at = now + slot.backoff
                log.error(
                    "engine process exited; restarting",
                    extra={
                        "slot": slot.index,
                        "pid": process.pid,
                        "exit_status": _describe(status),
                        "restart_in_seconds": slot.backoff,
                    },
                )
            if slot.process is None and now >= slot.restart_at:
                self._start(slot)

    def _rolling_restart(self) -> None:
        log.info("restarting engine processes")
        for slot in self.slots:
            old = slot.process
            self._start(slot)
            slot.backoff = 0.0
            if old is not None and old.poll() is None:
                old.send_signal(signal.SIGTERM)
                self._retiring.append(old)

    def _reap_retiring(self) -> None:
        self._retiring = [process for process in self._retiring if process.poll() is None]

    # --- stopping -------------------------------------------------------------------

    def _stop_all(self, signum: int) -> int:
        graceful = signum == signal.SIGTERM
        forward = signal.SIGTERM if graceful else signal.SIGINT
        running = [slot.process for slot in self.slots if slot.process is not None]
        running += self._retiring
        log.info(
            "stopping engine processes",
            extra={"graceful": graceful, "engine_processes": len(running)},
        )
        for process in running:
            if process.poll() is None:
                process.send_signal(forward)
        grace = self.grace_seconds if graceful else 0.0
        deadline = time.monotonic() + grace + KILL_MARGIN_SECONDS
        for process in running:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("engine process did not stop; killing it", extra={"pid": process.pid})
                process.kill()
                process.wait()
        log.info("engine processes stopped")
        return 0


def _describe(status: int) -> str:
    return f"signal {-status}" if status < 0 else f"exit {status}"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m app.execution.supervisor [--processes N] [--watch-parent]``."""
    import argparse

    from app.config import ConfigError, load_env_file, load_server_settings, load_settings
    from app.logging_config import configure_logging

    parser = argparse.ArgumentParser(prog="python -m app.execution.supervisor")
    parser.add_argument("--processes", type=int, default=None)
    parser.add_argument("--watch-parent", action="store_true")
    args = parser.parse_args(argv)
    load_env_file()
    try:
        settings = load_settings()
        server = load_server_settings()
    except ConfigError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format, settings.log_level)
    processes = args.processes if args.processes is not None else server.engine_processes
    if processes < 1:
        print("Error: the engine supervisor needs --processes 1 or more", file=sys.stderr)
        return 2
    supervisor = EngineSupervisor(
        processes, float(server.graceful_timeout), watch_parent=args.watch_parent
    )
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
