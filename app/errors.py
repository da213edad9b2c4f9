"""Domain errors with stable codes and the one JSON error envelope.

Every error a client can see is an :class:`AppError` subclass carrying an HTTP
status and a machine-readable ``code`` that never changes once published.
Handlers registered by :func:`init_app` turn these, Werkzeug's HTTP errors and
any unhandled exception into the same body::

    {"error": {"code": "...", "message": "...", "request_id": "..."}}

An unhandled exception becomes a 500 ``internal_error`` whose message says
nothing about internals; the traceback goes to the log (and Sentry) only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import sentry_sdk
from flask import Flask, Response, current_app, g, jsonify, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class AppError(Exception):
    """Base of every error that reaches a client with a stable code."""

    status = 500
    code = "internal_error"
    message = "Internal server error."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message or self.message)
        if message is not None:
            self.message = message
        self.details = details
        self.headers = headers or {}


class BadRequest(AppError):
    status = 400
    code = "bad_request"
    message = "The request could not be understood."


class MalformedRequest(BadRequest):
    """The request's framing is broken (say an invalid chunk size); the server closes it."""

    code = "malformed_request"
    message = "The request body framing is malformed."


class InvalidJson(AppError):
    status = 400
    code = "invalid_json"
    message = "The request body is not valid JSON."


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"
    message = "A valid bearer token is required."


class Forbidden(AppError):
    status = 403
    code = "forbidden"
    message = "This token may not do that."


class SignatureMissing(AppError):
    status = 401
    code = "signature_missing"
    message = "The request carries no signature."


class SignatureInvalid(AppError):
    status = 401
    code = "signature_invalid"
    message = "The request signature does not match."


class TimestampOutOfTolerance(AppError):
    status = 401
    code = "timestamp_out_of_tolerance"
    message = "The signed timestamp is outside the allowed tolerance."


class IpNotAllowed(AppError):
    status = 403
    code = "ip_not_allowed"
    message = "Requests from this address are not allowed for this trigger."


class NotFound(AppError):
    status = 404
    code = "not_found"
    message = "No such resource."


class TriggerNotFound(NotFound):
    code = "trigger_not_found"
    message = "No trigger has that name."


class MethodNotAllowed(AppError):
    status = 405
    code = "method_not_allowed"
    message = "This trigger does not accept this HTTP method."


class Conflict(AppError):
    status = 409
    code = "conflict"
    message = "The request conflicts with the current state."


class TriggerExists(Conflict):
    code = "trigger_exists"
    message = "A trigger with that name already exists."


class TriggerDisabled(Conflict):
    code = "trigger_disabled"
    message = "The trigger is disabled."


class PayloadTooLarge(AppError):
    status = 413
    code = "payload_too_large"
    message = "The request body is larger than allowed."


class UnsupportedEncoding(AppError):
    status = 415
    code = "unsupported_encoding"
    message = "The request body is compressed or encoded; send it as it is."


class ValidationFailed(AppError):
    status = 422
    code = "validation_failed"
    message = "The request document is invalid."

    @classmethod
    def from_pydantic(cls, error: ValidationError) -> ValidationFailed:
        return cls(details=validation_details(error))


def validation_details(error: ValidationError) -> list[dict[str, str]]:
    """Each pydantic error as ``{"path", "message", "type"}``, never echoing input."""
    return [
        {
            "path": ".".join(str(part) for part in item["loc"]),
            "message": item["msg"],
            "type": item["type"],
        }
        for item in error.errors(include_url=False, include_context=False, include_input=False)
    ]


class TriggerBusy(AppError):
    """The trigger cannot take more work now (``on_busy: reject`` or a full queue)."""

    status = 429
    code = "trigger_busy"
    message = "The trigger is busy; retry later."

    def __init__(self, message: str | None = None, *, code: str, retry_after: int) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})
        self.code = code


class ServiceUnavailable(AppError):
    status = 503
    code = "store_unavailable"
    message = "The store is unavailable; retry later."

    def __init__(self, message: str | None = None, *, retry_after: int = 5) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


# Werkzeug's own errors (routing 404/405, 413 from MAX_CONTENT_LENGTH, ...)
# keep their status but get a stable code of ours.
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Build the JSON error envelope; the request id comes from ``g``."""
    body: dict[str, Any] = {
        "code": code,
        "message": message,
        "request_id": g.get("request_id"),
    }
    if details is not None:
        body["details"] = details
    response = jsonify({"error": body})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


ErrorPage = Callable[[int, str, str], Response]
_PAGES = "hookrunner.error_pages"


def register_error_page(app: Flask, prefix: str, render: ErrorPage) -> None:
    """Errors of requests under ``prefix`` are rendered by ``render(status, code, message)``
    (an HTML page) instead of the JSON envelope; headers are kept."""
    app.extensions.setdefault(_PAGES, []).append((prefix, render))


def _page_for_path() -> ErrorPage | None:
    path = request.path
    for prefix, render in current_app.extensions.get(_PAGES, []):
        if path == prefix or path.startswith(prefix + "/"):
            return render  # type: ignore[no-any-return]
    return None


def _respond(
    status: int,
    code: str,
    message: str,
    *,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> Response:
    render = _page_for_path()
    if render is None:
        return error_response(status, code, message, details=details, headers=headers)
    try:
        response = render(status, code, message)
    except Exception as exc:  # the page itself failed: fall back to the envelope
        log.error("error page failed", exc_info=exc)
        return error_response(status, code, message, details=details, headers=headers)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _handle_app_error(error: AppError) -> Response:
    return _respond(
        error.status, error.code, error.message, details=error.details, headers=error.headers
    )


def _handle_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    code = _HTTP_CODES.get(status, "http_error" if status < 500 else "internal_error")
    allowed = getattr(error, "valid_methods", None)
    headers = {"Allow": ", ".join(allowed)} if status == 405 and allowed else None
    return _respond(status, code, error.description or "", headers=headers)


def _handle_unexpected(error: Exception) -> Response:
    # The one place unhandled request errors reach Sentry (app.sentry says why
    # there is no Flask integration); the ERROR line below is deduplicated by the SDK.
    sentry_sdk.capture_exception(error)
    log.error("unhandled error", exc_info=error)
    return _respond(500, AppError.code, AppError.message)


def _handle_malformed_framing(error: Exception) -> Response:
    # The server raised while reading the body for us: the client's bytes, not our bug.
    log.info("malformed request framing", extra={"error_type": type(error).__name__})
    return _handle_app_error(MalformedRequest())  # the envelope or a page, by path


def _server_parse_errors() -> tuple[type[Exception], ...]:
    """Exceptions a WSGI server raises from ``wsgi.input`` on malformed framing."""
    try:
        from gunicorn.http.errors import ParseException
    except ImportError:  # another WSGI server
        return ()
    return (ParseException,)


def init_app(app: Flask) -> None:
    """Register the handlers that give every error the same envelope."""
    app.register_error_handler(AppError, _handle_app_error)
    app.register_error_handler(HTTPException, _handle_http_exception)
    for parse_error in _server_parse_errors():
        app.register_error_handler(parse_error, _handle_malformed_framing)
    app.register_error_handler(Exception, _handle_unexpected)
