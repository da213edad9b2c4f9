"""The admin REST API under ``/admin`` (bearer token enforced by :mod:`app.auth`).

Bodies are validated by pydantic models through flask-openapi3, which also
publishes them in ``/openapi.json``. Validation failures become 422
``validation_failed`` with the wrong fields' paths in ``details``; a body that
is not JSON at all, or nests deeper than :data:`app.safe_json.MAX_JSON_DEPTH`
levels, is 400 ``invalid_json``.
"""

from __future__ import annotations

from flask import Response, current_app, request
from flask_openapi3 import OpenAPI
from pydantic import ValidationError

from app import safe_json
from app.errors import InvalidJson, error_response, validation_details
from app.ingest.body import request_data

ADMIN_SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]


def validation_error_response(error: ValidationError) -> Response:
    """flask-openapi3 callback: pydantic errors in our envelope, with field paths."""
    return error_response(
        422, "validation_failed", "The request is invalid.", details=validation_details(error)
    )


def reject_malformed_json() -> None:
    """Before-request hook: a non-empty admin body must parse as JSON, and a chunked
    one over ``MAX_BODY_BYTES`` is 413 ``payload_too_large`` (not cut short)."""
    if request.method not in ("POST", "PUT", "PATCH") or not request.path.startswith("/admin/"):
        return
    data = request_data(current_app.config["MAX_CONTENT_LENGTH"])
    if not data.strip():
        return
    try:
        safe_json.loads(data)
    except safe_json.JsonTooDeep:
        raise InvalidJson(
            f"The request body nests deeper than {safe_json.MAX_JSON_DEPTH} levels."
        ) from None
    except safe_json.DuplicateKey:
        raise InvalidJson("The request body has an object with the same key twice.") from None
    except safe_json.NotStandardJson as exc:
        raise InvalidJson(f"The request body is not standard JSON: {exc}.") from None
    except ValueError as exc:
        raise InvalidJson() from exc


def register_admin(app: OpenAPI) -> None:
    """Register every admin blueprint and the JSON guard."""
    from app.routes.admin import dedup_keys, deliveries, executions, metrics, triggers

    app.before_request(reject_malformed_json)
    for module in (triggers, deliveries, executions, dedup_keys, metrics):
        app.register_api(module.bp)
    app.register_api(executions.feed)
