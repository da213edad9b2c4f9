"""Sentry set-up, used only when ``SENTRY_DSN`` is set.

What is reported: unhandled exceptions of requests (captured by the app's own
500 handler, :mod:`app.errors`), ERROR log lines (WARNING lines become
breadcrumbs), failed executions (each in its own isolation scope,
:mod:`app.execution.engine`), breaker state changes, and - at
``SENTRY_TRACES_SAMPLE_RATE`` - request transactions (:mod:`app.sentry.wsgi`).
Events raised while a request is handled carry the request (scrubbed, see
:mod:`app.sentry.events`) and its ``request_id`` tag.

Why not the SDK's Flask integration: it forks scopes, continues a trace and
builds a transaction on *every* request, even at a sample rate of 0, which
cost a fifth to a quarter of ingest throughput. Hookrunner decides up front
whether a request is traced; an untraced request pays for one isolation scope
only, and request details are attached when an event is actually sent.

Also switched off: personal data, local variables of stack frames (they hold
rendered environments and secrets), the SDK's stdlib integration (its
breadcrumbs would carry command lines and forward URLs) and trace headers on
HTTP forwards (they go to third parties). Without a DSN nothing here runs:
no integration is set up and nothing is patched.
"""

from __future__ import annotations

import logging

from app.config import Settings
from app.sentry.events import (
    add_event_context,
    before_send,
    before_send_transaction,
    sample_traced_requests,
)

log = logging.getLogger(__name__)

_log_handlers: list[tuple[logging.Logger, logging.Handler]] = []
_processor_added = False


def _install_log_handlers() -> None:
    """ERROR lines become events, WARNING lines breadcrumbs.

    Plain handlers on the root logger instead of the SDK's logging integration,
    which runs code for every record: an INFO line (one access line per request)
    now costs Sentry nothing, because ``Logger.callHandlers`` skips handlers
    whose level is above the record's.
    """
    from sentry_sdk.integrations.logging import BreadcrumbHandler, EventHandler

    _remove_log_handlers()
    events = EventHandler(level=logging.ERROR)
    _log_handlers[:] = [
        (logging.getLogger(), events),
        (logging.getLogger(), BreadcrumbHandler(level=logging.WARNING)),
    ]
    # Gunicorn's error logger does not propagate; its "Error handling request" lines
    # (an exception outside Flask's handlers) are worth an event too.
    gunicorn_errors = logging.getLogger("gunicorn.error")
    if not gunicorn_errors.propagate:
        _log_handlers.append((gunicorn_errors, events))
    for logger, handler in _log_handlers:
        logger.addHandler(handler)


def _remove_log_handlers() -> None:
    for logger, handler in _log_handlers:
        logger.removeHandler(handler)
    _log_handlers.clear()


def _report_pending_at_exit(pending: int, timeout: float) -> None:
    """At exit, say in a JSON line (not the SDK's plain stderr text) what is still sent."""
    log.info(
        "sending pending Sentry events before exit",
        extra={"pending": pending, "timeout_seconds": timeout},
    )


def init_sentry(settings: Settings) -> bool:
    """Initialise sentry-sdk for Hookrunner; False (and nothing done) without a DSN."""
    global _processor_added
    if not settings.sentry_dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.atexit import AtexitIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration
    from sentry_sdk.integrations.stdlib import StdlibIntegration
    from sentry_sdk.scope import add_global_event_processor

    from app import __version__

    traced = settings.sentry_traces_sample_rate > 0
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.sentry_environment,
        release=settings.sentry_release or f"hookrunner@{__version__}",
        # Tracing is on only with a rate; app.sentry.wsgi samples at that rate.
        traces_sampler=sample_traced_requests if traced else None,
        # No personal data: send_default_pii stays at its default, False (sentry-sdk 2.75
        # deprecates passing it; its data_collection replacement would also switch off
        # the SDK's default event scrubber, which Hookrunner keeps as a second filter).
        # Release-health sessions per request cost more than they tell a webhook server.
        auto_session_tracking=False,
        max_request_body_size="never",
        include_local_variables=False,
        trace_propagation_targets=[],
        # No Flask integration, no logging integration (handlers below), no stdlib one.
        auto_enabling_integrations=False,
        disabled_integrations=[LoggingIntegration, StdlibIntegration],
        integrations=[AtexitIntegration(callback=_report_pending_at_exit)],
        before_send=before_send,  # type: ignore[arg-type]
        before_send_transaction=before_send_transaction,  # type: ignore[arg-type]
    )
    _install_log_handlers()
    if not _processor_added:
        add_global_event_processor(add_event_context)  # type: ignore[arg-type]
        _processor_added = True
    return True


def close_sentry(timeout: float = 2.0) -> None:
    """Send what is pending, then switch the SDK off and remove its log handlers.

    For tests and embedding; a worker's own exit is covered by the SDK's atexit hook.
    """
    import sentry_sdk

    client = sentry_sdk.get_client()
    if client.is_active():
        client.close(timeout=timeout)
    sentry_sdk.get_global_scope().set_client(None)
    _remove_log_handlers()
