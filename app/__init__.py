"""Hookrunner: a self-hosted webhook dispatch service.

:func:`create_app` is the only way to get an application; nothing is created at
import time (the WSGI entry in ``run.py`` calls it once per worker).

Importing this package loads only the standard library: the Gunicorn config
(:mod:`app.gunicorn_config`) and :mod:`app.config` are imported by Gunicorn's
master before gevent patches its workers, so Flask, sentry-sdk and everything
that pulls in ``ssl`` are imported inside :func:`create_app`.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask_openapi3 import OpenAPI

try:
    __version__ = version("hookrunner")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"

BEARER_SCHEME: dict[str, Any] = {"bearer": {"type": "http", "scheme": "bearer"}}


def create_app(overrides: Mapping[str, Any] | None = None) -> OpenAPI:
    """Build a configured app: settings, logging, store, middleware, routes, errors.

    ``overrides`` maps :class:`~app.config.Settings` field names to values (tests
    use it for a temp database and ``scheduler_enabled=False``). Pending
    migrations are applied before the app serves.
    """
    from flask_openapi3 import Info, OpenAPI

    from app import auth, errors, middleware, store, wiring
    from app.config import Settings, load_settings
    from app.execution.alerts import FailureAlerts
    from app.jobs import scheduler
    from app.logging_config import configure_logging
    from app.routes import register_blueprints
    from app.routes.admin import validation_error_response
    from app.sentry import wsgi as sentry_wsgi
    from app.store.migrations import migrate

    settings: Settings = load_settings(overrides=overrides)
    configure_logging(settings.log_format, settings.log_level)

    app = OpenAPI(
        __name__,
        info=Info(title="Hookrunner", version=__version__),
        security_schemes=BEARER_SCHEME,
        doc_prefix="/docs",
        doc_url="/openapi.json",
        validation_error_status=422,
        validation_error_callback=validation_error_response,
    )
    app.config["SETTINGS"] = settings
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["BODY_IDLE_SECONDS"] = settings.body_idle_seconds
    app.json.sort_keys = False  # type: ignore[attr-defined]

    database = store.open_store(settings)
    database.start_background()
    migrate(database)
    store.init_app(app, database)
    if settings.triggers_file:  # before the engine starts: it runs the applied triggers
        from app.triggers.admin import TriggerAdmin
        from app.triggers.apply import apply_at_startup

        apply_at_startup(TriggerAdmin(database), settings.triggers_file)
    built = wiring.init_app(app, database, settings)

    middleware.init_app(app)
    sentry_wsgi.init_app(app, settings)
    if settings.hooks_url_prefix:  # outermost: everything else sees /webhooks/<name>
        from app.routes.hooks_alias import HooksPathAlias

        app.wsgi_app = HooksPathAlias(app.wsgi_app, settings.hooks_url_prefix)  # type: ignore[method-assign]
    auth.init_app(app)
    errors.init_app(app)
    register_blueprints(app)
    if settings.scheduler_enabled:
        scheduler.init_app(
            app,
            scheduler.JobContext(
                database,
                settings,
                built.triggers,
                built.notifier,
                FailureAlerts(database, settings, built.breakers),
            ),
        )
    return app
