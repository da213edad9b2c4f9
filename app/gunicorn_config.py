"""Gunicorn settings: ``gunicorn -c python:app.gunicorn_config`` alone starts Hookrunner.

``hookrunner serve`` runs exactly that, and ``gunicorn.conf.py`` in a checkout
re-exports this module, so every way of starting the server reads the same
settings.

Only the standard library, Gunicorn's logger and python-json-logger are
imported here (the ``app`` package itself imports nothing heavy at import
time). gevent's worker monkey-patches after fork, so importing ssl, requests
or sentry_sdk at this level would load them unpatched (docs/architecture.md,
gevent rule 1); for the same reason there is no ``preload_app``. Each worker
builds the app itself (``run:app``), applying pending migrations.
"""

import sys
from typing import Any

from gunicorn.glogging import Logger
from pythonjsonlogger.json import JsonFormatter

from app import gunicorn_errors
from app.config import (
    ConfigError,
    ServerSettings,
    Settings,
    load_env_file,
    load_server_settings,
    load_settings,
)


def _load() -> tuple[Settings, ServerSettings]:
    """``.env``, then every setting, checked before Gunicorn binds its port.

    A malformed value ends the process here with one line naming the variable
    and exit status 2 (SystemExit is not caught by Gunicorn's config loader, so
    no traceback is printed).
    """
    load_env_file()
    try:
        return load_settings(), load_server_settings()
    except ConfigError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


_settings, _server = _load()
gunicorn_errors.install()  # requests Gunicorn refuses get the JSON envelope too

wsgi_app = "run:app"
bind = [_server.bind]
workers = _server.workers
worker_class = "gevent"
worker_connections = _server.worker_connections
# sqlite's busy_timeout (5 s by default) stays well below this. It does not bound a
# request: a gevent worker reports to the master from its own greenlet every second,
# however long a request (an SSE stream, a response.mode "wait" answer) lasts.
timeout = _server.timeout
graceful_timeout = _server.graceful_timeout
# Also the longest a gevent worker waits for a request's headers, however slowly they
# trickle in (slowloris); 0 would lift that bound. BODY_IDLE_SECONDS bounds the body.
keepalive = 5
# Gunicorn >= 24 opens a control socket at one fixed path per user; several
# instances on a host would fight over it and Hookrunner does not use it.
control_socket_disable = True
preload_app = False
# Hookrunner writes its own JSON access line per request; Gunicorn's own lines (boot,
# signals, worker exits) are JSON too, and Gunicorn builds no access line at all.
accesslog = None
errorlog = "-"
loglevel = _settings.log_level.lower()


class JsonLogger(Logger):  # type: ignore[misc]  # gunicorn ships no type hints
    """Gunicorn's logger with JSON error lines and the access log switched off."""

    @property
    def access_log_enabled(self) -> bool:
        return False

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        formatter = JsonFormatter(
            "%(levelname)s %(name)s %(message)s",
            timestamp=True,
            rename_fields={"levelname": "level", "name": "logger"},
            static_fields={"request_id": None},
        )
        for handler in self.error_log.handlers:
            handler.setFormatter(formatter)

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        return None


logger_class = JsonLogger


def when_ready(server: Any) -> None:
    """Say which store the workers use; start the engine processes (before any worker forks).

    ``ENGINE_PROCESSES`` engine processes run the executions while the web workers
    ingest (:mod:`app.execution.engine_host`). With ``ENGINE_PROCESSES=0``, with
    ``ENGINE_ENABLED=0`` (a web-only host) or with ``--reload`` (development: code
    changes must reach the engine too) no engine processes start and each web
    worker's app runs its own engine as ENGINE_ENABLED says.
    """
    server.log.info("store: %s", _settings.store_description)
    if _server.engine_processes > 0 and _settings.engine_enabled and not server.cfg.reload:
        from app.execution.engine_host import EngineHost

        host = EngineHost(_server.engine_processes, float(_server.graceful_timeout))
        host.start()
        server._hookrunner_engines = host  # kept on the arbiter: SIGHUP re-reads this module


def _engine_host(server: Any) -> Any:
    return getattr(server, "_hookrunner_engines", None)


def post_fork(server: Any, worker: Any) -> None:
    """Web workers run no engine of their own while engine processes run."""
    if _engine_host(server) is not None:
        from app.execution.engine_host import web_worker_env

        web_worker_env()


def on_reload(server: Any) -> None:
    """SIGHUP: new web workers (Gunicorn) and a rolling restart of the engines."""
    host = _engine_host(server)
    if host is not None:
        host.reload()


# --- per-server Prometheus counters ----------------------------------------------------
# Workers write their counters (app.ingest.auth_failures) to files in this directory
# and /metrics on any worker sums them. It is wiped when the server starts, so the
# counters start at zero like any Prometheus counter; without the variable the master
# makes a private one and removes it at exit.
_METRICS_DIR_VAR = "PROMETHEUS_MULTIPROC_DIR"


def on_starting(server: Any) -> None:
    import glob
    import os
    import tempfile

    directory = os.environ.get(_METRICS_DIR_VAR)
    if not directory:
        directory = tempfile.mkdtemp(prefix="hookrunner-metrics-")
        os.environ[_METRICS_DIR_VAR] = directory
        server._hookrunner_metrics_dir = directory
    os.makedirs(directory, exist_ok=True)
    for stale in glob.glob(os.path.join(directory, "*.db")):
        os.remove(stale)


def on_exit(server: Any) -> None:
    """The engines have drained (or are killed) before the master exits."""
    import shutil

    host = _engine_host(server)
    if host is not None:
        host.wait_stopped()

    directory = getattr(server, "_hookrunner_metrics_dir", None)
    if directory:
        shutil.rmtree(directory, ignore_errors=True)


# --- worker lifecycle hooks (docs/architecture.md, gevent rule 4) ---------------------
# Imports happen inside the hooks: they run in the worker, after gevent patched it.


def post_worker_init(worker: Any) -> None:
    """On SIGTERM, also tell the app: streams end and engines stop claiming at once."""
    import signal

    from app import lifecycle

    def handle_term(signum: int, frame: Any) -> None:
        app_lifecycle = lifecycle.of(getattr(worker, "wsgi", None))
        if app_lifecycle is not None:
            app_lifecycle.begin_shutdown()
        worker.handle_exit(signum, frame)

    signal.signal(signal.SIGTERM, handle_term)


def worker_int(worker: Any) -> None:
    """SIGINT/SIGQUIT: stop now; running executions are recorded interrupted."""
    from app import lifecycle

    app_lifecycle = lifecycle.of(getattr(worker, "wsgi", None))
    if app_lifecycle is not None:
        app_lifecycle.drain(graceful_timeout=0, margin=0)


def worker_exit(server: Any, worker: Any) -> None:
    """Let running executions finish within what is left of graceful_timeout."""
    from app import lifecycle

    app_lifecycle = lifecycle.of(getattr(worker, "wsgi", None))
    if app_lifecycle is not None:
        app_lifecycle.drain(graceful_timeout=worker.cfg.graceful_timeout)
