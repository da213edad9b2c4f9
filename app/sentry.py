"""Sentry set-up, used only when ``SENTRY_DSN`` is set.

Nothing secret leaves the process: no default PII, and ``before_send`` strips
request bodies, cookies and the headers that carry credentials or signatures.
Client errors (4xx) are not reported, and transactions of long-lived SSE
streams are dropped.
"""

from __future__ import annotations

import logging
from typing import Any

from app.config import Settings
from app.services.redaction import REDACTED, is_sensitive_header


def _scrub_request(request: dict[str, Any]) -> None:
    request.pop("data", None)
    request.pop("cookies", None)
    headers = request.get("headers")
    if isinstance(headers, dict):
        for name in list(headers):
            if is_sensitive_header(name):
                headers[name] = REDACTED


def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
    """Drop client errors; scrub bodies and credential headers."""
    exc_info = hint.get("exc_info")
    if exc_info is not None:
        status = getattr(exc_info[1], "status", None) or getattr(exc_info[1], "code", None)
        if isinstance(status, int) and 400 <= status < 500:
            return None
    request = event.get("request")
    if isinstance(request, dict):
        _scrub_request(request)
    return event


def before_send_transaction(event: dict[str, Any], _hint: dict[str, Any]) -> dict[str, Any] | None:
    """Drop transactions of SSE streams: they last minutes and say nothing useful."""
    name = str(event.get("transaction") or "")
    if name.endswith("/stream") or "stream" in name.rsplit(".", 1)[-1]:
        return None
    request = event.get("request")
    if isinstance(request, dict):
        _scrub_request(request)
    return event


def init_sentry(settings: Settings) -> bool:
    """Initialise sentry-sdk with the Flask integration; False when no DSN is set."""
    if not settings.sentry_dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration

    from app import __version__

    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.sentry_environment,
        release=settings.sentry_release or f"hookrunner@{__version__}",
        # 0 means no tracing at all (no unsampled transaction objects per request).
        traces_sample_rate=settings.sentry_traces_sample_rate or None,
        send_default_pii=False,
        # Release-health sessions per request cost more than they tell a webhook server.
        auto_session_tracking=False,
        max_request_body_size="never",
        # Frames of the engine hold rendered env and secrets: never ship local variables.
        include_local_variables=False,
        # ERROR lines become events; INFO lines (one access line per request) do not
        # become breadcrumbs - executions add their own at each stage.
        integrations=[
            FlaskIntegration(),
            LoggingIntegration(level=logging.WARNING, event_level=logging.ERROR),
        ],
        before_send=before_send,  # type: ignore[arg-type]
        before_send_transaction=before_send_transaction,  # type: ignore[arg-type]
    )
    return True
