"""One engine process: claim queued executions and run them, nothing else.

``python -m app.execution.process`` is what the engine supervisor
(:mod:`app.execution.supervisor`) starts, once per engine process. It is a
gevent process like a web worker - patched first, before anything imports
``ssl`` or the database drivers - with the same settings, JSON logs and Sentry
set-up, and the same components (:func:`app.wiring.build`) minus HTTP: the
engine claims work when the notifier backend rings (another process queued it)
or on its one-second sweep, and every log line of an execution carries the
webhook's request id, read from the execution row.

Stopping:

* SIGTERM (or the supervisor going away): stop claiming, let running
  executions finish within ``GUNICORN_GRACEFUL_TIMEOUT`` seconds, record the
  rest ``interrupted``, exit 0.
* SIGINT/SIGQUIT: the same without the grace period.

A kill -9 leaves its leases behind; the lease reaper of any other process
reconciles them (``interrupted``, or retried per the trigger's policy).
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import logging  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
from gevent.event import Event  # noqa: E402

log = logging.getLogger("app.execution.process")

PARENT_CHECK_SECONDS = 1.0


def main() -> int:
    """Run one engine until told to stop; the exit status (0 after a clean drain)."""
    from app.config import ConfigError, load_env_file, load_server_settings, load_settings

    load_env_file()
    try:
        settings = load_settings(overrides={"engine_enabled": True, "scheduler_enabled": False})
        server = load_server_settings()
    except ConfigError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2

    from app import wiring
    from app.logging_config import configure_logging
    from app.sentry import init_sentry
    from app.store import open_store
    from app.store.migrations import migrate

    configure_logging(settings.log_format, settings.log_level)
    init_sentry(settings)
    store = open_store(settings)
    store.start_background()
    migrate(store)
    from app.execution.runners import guard

    guard.start()
    built = wiring.build(store, settings, serves_http=False)
    log.info(
        "engine process started",
        extra={"pid": os.getpid(), "pool_size": settings.execution_pool_size},
    )

    stop = Event()
    grace = {"seconds": float(server.graceful_timeout)}

    def request_stop(seconds: float) -> None:
        grace["seconds"] = min(grace["seconds"], seconds)
        built.lifecycle.begin_shutdown()  # stop claiming at once
        stop.set()

    gevent.signal_handler(signal.SIGTERM, request_stop, float(server.graceful_timeout))
    gevent.signal_handler(signal.SIGINT, request_stop, 0.0)
    gevent.signal_handler(signal.SIGQUIT, request_stop, 0.0)
    parent = os.getppid()

    while not stop.wait(PARENT_CHECK_SECONDS):
        if os.getppid() != parent:  # the supervisor died: nobody will stop us
            log.warning("engine supervisor went away; stopping")
            request_stop(float(server.graceful_timeout))

    log.info("engine process draining", extra={"grace_seconds": grace["seconds"]})
    built.lifecycle.drain(graceful_timeout=grace["seconds"], margin=0)
    store.close()  # and with it the notifier backend
    log.info("engine process stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
