"""Sentry set-up, used only when ``SENTRY_DSN`` is set.

What is reported: unhandled exceptions of requests (captured by the app's own
500 handler, :mod:`app.errors`), ERROR log lines, failed executions (each in
its own isolation scope, :mod:`app.services.engine`), breaker state changes,
and - at ``SENTRY_TRACES_SAMPLE_RATE`` - request transactions
(:mod:`app.sentry_requests`). Every event raised while a request is handled
carries the request (method, URL, scrubbed headers) and its ``request_id`` tag.

Why not the SDK's Flask integration: it forks scopes, continues a trace and
builds a transaction on *every* request, even at a sample rate of 0, which
cost a third of ingest throughput. Hookrunner decides up front whether a
request is traced; an untraced request pays for one isolation scope only, and
request details are attached when an event is actually sent (the global event
processor below).

Nothing secret leaves the process: no default PII, no request bodies or
cookies, credential and signature headers replaced, no local variables of
stack frames, no query strings of webhook requests (senders put tokens there),
no breadcrumbs of the SDK's stdlib integration (they would carry rendered argv
and destination URLs), no trace headers added to HTTP forwards. Client errors
(4xx) are never reported; transactions of SSE streams are dropped.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import has_request_context, request

from app.config import Settings
from app.context import execution_id_var, request_id_var
from app.services.redaction import REDACTED, is_sensitive_header

log = logging.getLogger(__name__)

# Set on the WSGI environ of a request that is traced (read by the sampler).
TRACED_ENVIRON_KEY = "hookrunner.sentry_traced"


def _scrub_request(request_data: dict[str, Any]) -> None:
    request_data.pop("data", None)
    request_data.pop("cookies", None)
    request_data.pop("env", None)
    headers = request_data.get("headers")
    if isinstance(headers, dict):
        for name in list(headers):
            if is_sensitive_header(name):
                headers[name] = REDACTED
    url = str(request_data.get("url") or "")
    if "/webhooks/" in url:
        request_data.pop("query_string", None)


def request_data_of_current_request() -> dict[str, Any]:
    """What Sentry is told about the request being handled (already scrubbed)."""
    data: dict[str, Any] = {
        "method": request.method,
        "url": request.base_url,
        "query_string": request.query_string.decode("latin-1"),
        "headers": dict(request.headers.items()),
    }
    _scrub_request(data)
    return data


def add_request_context(event: dict[str, Any], _hint: dict[str, Any]) -> dict[str, Any]:
    """Global event processor: the request and its id on events raised in a request.

    Runs only when an event is sent, so requests that raise nothing pay nothing.
    Events of executions are left alone: their scope carries their own tags.
    """
    if execution_id_var.get() is not None:
        return event
    request_id = request_id_var.get()
    if request_id is not None:
        event.setdefault("tags", {}).setdefault("request_id", request_id)
    if event.get("type") != "transaction" and has_request_context():
        if "request" not in event:
            event["request"] = request_data_of_current_request()
        rule = request.url_rule
        if rule is not None and not event.get("transaction"):
            event["transaction"] = rule.rule
            event["transaction_info"] = {"source": "route"}
    return event


def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
    """Drop client errors; scrub bodies and credential headers (a last line of defence)."""
    exc_info = hint.get("exc_info")
    if exc_info is not None:
        status = getattr(exc_info[1], "status", None) or getattr(exc_info[1], "code", None)
        if isinstance(status, int) and 400 <= status < 500:
            return None
    request_data = event.get("request")
    if isinstance(request_data, dict):
        _scrub_request(request_data)
    return event


def before_send_transaction(event: dict[str, Any], _hint: dict[str, Any]) -> dict[str, Any] | None:
    """Drop transactions of SSE streams: they last minutes and say nothing useful."""
    name = str(event.get("transaction") or "")
    if name.endswith("/stream") or "stream" in name.rsplit(".", 1)[-1]:
        return None
    request_data = event.get("request")
    if isinstance(request_data, dict):
        _scrub_request(request_data)
    return event


def sample_traced_requests(sampling_context: dict[str, Any]) -> float:
    """``traces_sampler``: requests chosen by :mod:`app.sentry_requests` are kept.

    The upstream service's decision wins when the request continues a trace.
    """
    parent = sampling_context.get("parent_sampled")
    if parent is not None:
        return float(parent)
    environ = sampling_context.get("wsgi_environ") or {}
    return 1.0 if environ.get(TRACED_ENVIRON_KEY) else 0.0


_log_handlers: list[tuple[logging.Logger, logging.Handler]] = []


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


_processor_added = False


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
        # Tracing is on only with a rate; app.sentry_requests samples at that rate.
        traces_sampler=sample_traced_requests if traced else None,
        # No personal data: send_default_pii stays at its default, False (sentry-sdk 2.75
        # deprecates passing it; its data_collection replacement would also switch off
        # the SDK's default event scrubber, which Hookrunner keeps as a second filter).
        # Release-health sessions per request cost more than they tell a webhook server.
        auto_session_tracking=False,
        max_request_body_size="never",
        # Frames of the engine hold rendered env and secrets: never ship local variables.
        include_local_variables=False,
        # HTTP forwards go to third parties: no sentry-trace/baggage headers on them.
        trace_propagation_targets=[],
        # No Flask integration (see the module docstring); no logging integration
        # (handlers below); no stdlib breadcrumbs of subprocess argv or outbound URLs.
        auto_enabling_integrations=False,
        disabled_integrations=[LoggingIntegration, StdlibIntegration],
        integrations=[AtexitIntegration(callback=_report_pending_at_exit)],
        before_send=before_send,  # type: ignore[arg-type]
        before_send_transaction=before_send_transaction,  # type: ignore[arg-type]
    )
    _install_log_handlers()
    if not _processor_added:
        add_global_event_processor(add_request_context)  # type: ignore[arg-type]
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
