"""Per-request Sentry wiring: an isolation scope for every request, a trace for a few.

:class:`SentryRequests` wraps the Flask WSGI app when the SDK is active.

* Every request runs in its own isolation scope with its own trace id, so tags,
  breadcrumbs and traces of one request never reach the next one on the same
  keep-alive connection (a gevent connection greenlet serves them all in one
  context). Streamed bodies get theirs in :mod:`app.routes.admin.executions`.
* With ``SENTRY_TRACES_SAMPLE_RATE`` > 0, the decision to trace is taken here,
  before any tracing object exists. An admin API request whose ``sentry-trace``
  header carries an explicit decision (``-1`` / ``-0``) follows it; everything
  else - webhooks always, since any sender can set that header - is drawn at the
  configured rate. SSE streams are never traced. A traced request goes through
  the SDK's own ``SentryWsgiMiddleware`` (transaction, status, request data)
  and is named after its URL rule.

Requests that are not traced never build a transaction, which is what keeps
Sentry's cost per request small (``bench/sentry_overhead.py``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import Any

import sentry_sdk
from flask import Flask, g, request

from app.config import Settings
from app.sentry.events import TRACED_ENVIRON_KEY, WEBHOOK_PATH_PREFIX

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def upstream_decision(header: str | None) -> bool | None:
    """The sampling flag of a ``sentry-trace`` header; None when absent or malformed."""
    from sentry_sdk.tracing_utils import extract_sentrytrace_data

    data = extract_sentrytrace_data(header)
    sampled = data.get("parent_sampled") if data else None
    return sampled if isinstance(sampled, bool) else None


class SentryRequests:
    """WSGI middleware: isolation scope per request; traces at the sample rate."""

    def __init__(self, app: WsgiApp, traces_sample_rate: float) -> None:
        from sentry_sdk.integrations.wsgi import SentryWsgiMiddleware

        self._app = app
        self._rate = traces_sample_rate
        self._traced_app = SentryWsgiMiddleware(app, span_origin="auto.http.hookrunner")

    def should_trace(self, environ: dict[str, Any]) -> bool:
        path = environ.get("PATH_INFO", "")
        if self._rate <= 0 or path.endswith("/stream"):
            return False
        if "HTTP_SENTRY_TRACE" in environ and not path.startswith(WEBHOOK_PATH_PREFIX):
            decided = upstream_decision(environ["HTTP_SENTRY_TRACE"])
            if decided is not None:
                return decided
        return random.random() < self._rate  # noqa: S311 - sampling, not security

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if self.should_trace(environ):
            environ[TRACED_ENVIRON_KEY] = True
            return self._traced_app(environ, start_response)
        with sentry_sdk.isolation_scope() as scope:
            scope.set_new_propagation_context()
            return self._app(environ, start_response)


def _name_traced_transaction() -> None:
    """Name a traced request's transaction after its route and tag its request id."""
    if not request.environ.get(TRACED_ENVIRON_KEY):
        return
    if request.url_rule is not None:
        sentry_sdk.get_current_scope().set_transaction_name(request.url_rule.rule, source="route")
    # The request's own isolation scope (forked by the SDK's middleware).
    sentry_sdk.set_tag("request_id", g.get("request_id"))


def init_app(app: Flask, settings: Settings) -> bool:
    """Wrap ``app`` when Sentry is initialised (``run.py``); False otherwise."""
    if not sentry_sdk.get_client().is_active():
        return False
    app.wsgi_app = SentryRequests(  # type: ignore[method-assign]
        app.wsgi_app, settings.sentry_traces_sample_rate
    )
    if settings.sentry_traces_sample_rate > 0:
        app.before_request(_name_traced_transaction)
    return True
