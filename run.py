"""WSGI entry point: ``gunicorn -c python:app.gunicorn_config`` serves ``run:app``.

Installed as a top-level module with the package. ``.env`` in the working
directory is read first (as by every entry point). Sentry is initialised here,
at module level and only when ``SENTRY_DSN`` is set, so it hooks in before the
app is built (and, under Gunicorn, after gevent has patched the worker).
``python run.py`` serves with Flask's development server.
"""

from __future__ import annotations

from app.config import load_env_file, load_server_settings, load_settings

load_env_file()

from app import create_app  # noqa: E402
from app.logging_config import configure_logging  # noqa: E402
from app.sentry import init_sentry  # noqa: E402

_settings = load_settings()
configure_logging(_settings.log_format, _settings.log_level)
init_sentry(_settings)

app = create_app()

if __name__ == "__main__":
    host, _, port = load_server_settings().bind.rpartition(":")
    app.run(host=host or "127.0.0.1", port=int(port), debug=False, threaded=True)
