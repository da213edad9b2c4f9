"""OpenAPI description of ``POST /webhooks/{trigger}``.

The ingest route is a plain Flask view (no model validation on the hot path),
so its contract is written here and added to the generated spec.
"""

from __future__ import annotations

from typing import Any


def error_response(description: str) -> dict[str, Any]:
    """A response carrying the error envelope; ``description`` lists its codes."""
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
    }


ERROR_ENVELOPE: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "request_id"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "request_id": {"type": ["string", "null"]},
                "details": {},
            },
        }
    },
}

WEBHOOK_PATH: dict[str, Any] = {
    "post": {
        "tags": ["webhooks"],
        "summary": "Receive a webhook: verify, deduplicate, record, queue an execution",
        "description": "GET, HEAD, PUT, PATCH, DELETE and OPTIONS are answered the same"
        " way when the trigger lists them in `methods` (default POST only; others: 405"
        " method_not_allowed with Allow, except OPTIONS: 204 with Allow, nothing recorded).",
        "operationId": "receive_webhook",
        "parameters": [
            {
                "name": "trigger",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"},
            }
        ],
        "requestBody": {
            "description": "The sender's payload, verified over its raw bytes.",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
                "text/plain": {"schema": {"type": "string"}},
            },
        },
        "responses": {
            "200": {"description": "Duplicate: the original execution id is returned."},
            "202": {
                "description": "Accepted (or ignored by the filter) and durably recorded.",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}
                },
            },
            "400": error_response("invalid_json"),
            "401": error_response(
                "signature_missing | signature_invalid | timestamp_out_of_tolerance"
            ),
            "403": error_response("ip_not_allowed (auth.allow_ips)"),
            "404": error_response("trigger_not_found"),
            "405": error_response("method_not_allowed (with Allow): see the trigger's methods"),
            "409": error_response("trigger_disabled"),
            "413": error_response("payload_too_large"),
            "415": error_response("unsupported_encoding (Content-Encoding or a transfer coding)"),
            "429": error_response("trigger_busy | queue_full (with Retry-After)"),
            "503": error_response("store_unavailable (with Retry-After)"),
        },
    }
}


def add_to(spec: dict[str, Any]) -> None:
    spec.setdefault("paths", {})["/webhooks/{trigger}"] = WEBHOOK_PATH
    spec.setdefault("components", {}).setdefault("schemas", {})["ErrorEnvelope"] = ERROR_ENVELOPE
