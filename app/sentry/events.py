"""What goes into a Sentry event, and what never does.

Request details are attached by :func:`add_event_context`, a global event
processor that runs only when an event is sent: requests that raise nothing pay
nothing. Everything that leaves the process passes :func:`before_send` /
:func:`before_send_transaction`, which scrub again whatever attached it (the
SDK's own WSGI middleware on traced requests included).

Scrubbing rules:

* request bodies, cookies and the WSGI environment are dropped;
* headers of webhook requests keep their values only when they are on
  :data:`WEBHOOK_HEADERS_KEPT` (content type, sender event and delivery ids):
  a trigger may carry its shared secret in any header it names;
* other requests' credential and signature headers are replaced, and so are
  the headers that carry the client's address (no personal data);
* query strings of webhook requests are dropped (some senders put tokens
  there), also from Gunicorn's "Error handling request" lines.
"""

from __future__ import annotations

import re
from typing import Any

from flask import has_request_context, request

from app.context import execution_id_var, request_id_var, trigger_var
from app.redaction import REDACTED, is_sensitive_header

# Set on the WSGI environ of a request that is traced (read by the sampler).
TRACED_ENVIRON_KEY = "hookrunner.sentry_traced"
WEBHOOK_PATH_PREFIX = "/webhooks/"

WEBHOOK_HEADERS_KEPT = frozenset(
    {
        "content-type",
        "content-length",
        "user-agent",
        "host",
        "x-request-id",
        "x-github-event",
        "x-github-delivery",
        "x-github-hook-id",
        "x-gitlab-event",
        "x-gitlab-event-uuid",
        "webhook-id",
        "webhook-timestamp",
        "svix-id",
        "svix-timestamp",
        "x-shopify-topic",
        "x-shopify-webhook-id",
        "x-slack-request-timestamp",
        "x-slack-retry-num",
    }
)
CLIENT_ADDRESS_HEADERS = frozenset(
    {
        "x-forwarded-for",
        "x-real-ip",
        "forwarded",
        "true-client-ip",
        "cf-connecting-ip",
        "x-client-ip",
        "x-cluster-client-ip",
    }
)
_QUERY = re.compile(r"\?\S*")


def _is_webhook_url(url: str) -> bool:
    return WEBHOOK_PATH_PREFIX in url


def _scrub_headers(headers: dict[str, Any], webhook: bool) -> None:
    for name in list(headers):
        lowered = name.lower()
        if webhook:
            keep = lowered in WEBHOOK_HEADERS_KEPT
        else:
            keep = not is_sensitive_header(lowered, CLIENT_ADDRESS_HEADERS)
        if not keep:
            headers[name] = REDACTED


def scrub_request(request_data: dict[str, Any]) -> None:
    """Apply the module's rules to an event's ``request`` (in place)."""
    for key in ("data", "cookies", "env"):
        request_data.pop(key, None)
    webhook = _is_webhook_url(str(request_data.get("url") or ""))
    headers = request_data.get("headers")
    if isinstance(headers, dict):
        _scrub_headers(headers, webhook)
    if webhook:
        request_data.pop("query_string", None)


def _scrub_server_log(event: dict[str, Any]) -> None:
    """Gunicorn's error lines print the request URI, query string included."""
    entry = event.get("logentry")
    if not isinstance(entry, dict):
        return
    for key in ("message", "formatted"):
        if isinstance(entry.get(key), str):
            entry[key] = _QUERY.sub("?[redacted]", entry[key])
    params = entry.get("params")
    if isinstance(params, list | tuple):
        entry["params"] = [
            _QUERY.sub("?[redacted]", p) if isinstance(p, str) else p for p in params
        ]


def current_request_data() -> dict[str, Any]:
    """What Sentry is told about the request being handled (already scrubbed)."""
    data: dict[str, Any] = {
        "method": request.method,
        "url": request.base_url,
        "query_string": request.query_string.decode("latin-1"),
        "headers": dict(request.headers.items()),
    }
    scrub_request(data)
    return data


def add_event_context(event: dict[str, Any], _hint: dict[str, Any]) -> dict[str, Any]:
    """Global event processor: ids from the context; the request on request events.

    ``request_id`` (and, inside an execution, ``execution_id`` and ``trigger``)
    are taken from :mod:`app.context` unless the scope already tagged them, so
    an event raised outside the execution's own scope still says which one it
    was. Events of executions get no request data: their webhook was answered
    long ago.
    """
    tags = event.setdefault("tags", {})
    execution_id = execution_id_var.get()
    if execution_id is not None:
        tags.setdefault("execution_id", execution_id)
        tags.setdefault("trigger", trigger_var.get())
    request_id = request_id_var.get()
    if request_id is not None:
        tags.setdefault("request_id", request_id)
    if execution_id is None and event.get("type") != "transaction" and has_request_context():
        if "request" not in event:
            event["request"] = current_request_data()
        rule = request.url_rule
        if rule is not None and not event.get("transaction"):
            event["transaction"] = rule.rule
            event["transaction_info"] = {"source": "route"}
    return event


def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
    """Drop client errors; scrub requests and server log lines (the last line of defence)."""
    exc_info = hint.get("exc_info")
    if exc_info is not None:
        status = getattr(exc_info[1], "status", None) or getattr(exc_info[1], "code", None)
        if isinstance(status, int) and 400 <= status < 500:
            return None
    request_data = event.get("request")
    if isinstance(request_data, dict):
        scrub_request(request_data)
    if str(event.get("logger") or "").startswith("gunicorn"):
        _scrub_server_log(event)
    return event


def before_send_transaction(event: dict[str, Any], _hint: dict[str, Any]) -> dict[str, Any] | None:
    """Drop transactions of SSE streams: they last minutes and say nothing useful."""
    name = str(event.get("transaction") or "")
    if name.endswith("/stream") or "stream" in name.rsplit(".", 1)[-1]:
        return None
    request_data = event.get("request")
    if isinstance(request_data, dict):
        scrub_request(request_data)
    return event


def sample_traced_requests(sampling_context: dict[str, Any]) -> float:
    """``traces_sampler``: keep exactly the requests :mod:`app.sentry.wsgi` chose.

    That choice already honoured an upstream service's explicit decision; any
    other transaction follows its parent's decision, else is not kept.
    """
    environ = sampling_context.get("wsgi_environ") or {}
    if environ.get(TRACED_ENVIRON_KEY):
        return 1.0
    parent = sampling_context.get("parent_sampled")
    return float(parent) if parent is not None else 0.0
