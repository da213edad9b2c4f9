"""Request id in and out, and one JSON access line per request.

A well-formed incoming ``X-Request-ID`` (1-128 chars of ``[A-Za-z0-9._-]``) is
kept so ids can be followed across systems; anything else is replaced by a new
UUID4. The id lives in ``g.request_id`` and in :data:`app.context.request_id_var`
(so log records and execution greenlets see it), is returned on every response
including errors, and is reset when the request ends.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, Response, g, request

from app.context import request_id_var

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

access_log = logging.getLogger("hookrunner.access")


def choose_request_id(incoming: str | None) -> str:
    """Keep a well-formed incoming id, otherwise make a new one."""
    if incoming and _REQUEST_ID_RE.match(incoming):
        return incoming
    return str(uuid.uuid4())


def _start_request() -> None:
    g.request_started = time.perf_counter()
    g.request_id = choose_request_id(request.headers.get(REQUEST_ID_HEADER))
    g.request_id_token = request_id_var.set(g.request_id)


def _finish_request(response: Response) -> Response:
    request_id = g.get("request_id")
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    started = g.get("request_started")
    duration_ms = round((time.perf_counter() - started) * 1000, 2) if started else None
    access_log.info(
        "request",
        extra={
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": duration_ms,
            "remote_addr": request.remote_addr,
        },
    )
    return response


def _reset_request(_exc: BaseException | None) -> None:
    token = g.pop("request_id_token", None)
    if token is not None:
        request_id_var.reset(token)


def init_app(app: Flask) -> None:
    app.before_request(_start_request)
    app.after_request(_finish_request)
    app.teardown_request(_reset_request)
