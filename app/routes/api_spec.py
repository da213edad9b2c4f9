"""What ``/openapi.json`` says each operation answers, beyond what the routes' models say.

flask-openapi3 generates paths and request models from the routes; it cannot
know the JSON a view returns, nor the errors :mod:`app.errors` raises. This
module completes the generated spec once: every admin operation gets its real
success response and the error envelope for 401 (always), 403 (a write: a
viewer token), 404 (an id or name in the path), 409, 422 (a query or body), 429 where it occurs; the
flask-openapi3 default 422 (a bare list) is replaced by our envelope;
``/healthz``, ``/readyz`` and ``/metrics`` are described; and the ingest route
comes from :mod:`app.routes.ingest_spec`. ``tests/test_openapi.py`` validates
real responses of every operation against these schemas.
"""

from __future__ import annotations

from typing import Any

from app.routes import ingest_spec

_REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _nullable(kind: str) -> dict[str, Any]:
    return {"type": [kind, "null"]}


def _object(required: dict[str, Any], **optional: Any) -> dict[str, Any]:
    """An object with these required properties (more may appear: views grow fields)."""
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **optional},
    }


def _page(item: str) -> dict[str, Any]:
    return _object(
        {"items": {"type": "array", "items": _ref(item)}, "next_cursor": _nullable("string")}
    )


_STRING = {"type": "string"}
_INTEGER = {"type": "integer"}
_OBJECT = {"type": "object"}

SCHEMAS: dict[str, Any] = {
    "Trigger": _object(
        {
            "name": _STRING,
            "description": _STRING,
            "enabled": {"type": "boolean"},
            "auth": _OBJECT,
            "action": _OBJECT,
            "created_at": _STRING,
            "updated_at": _STRING,
        }
    ),
    "TriggerList": _object({"items": {"type": "array", "items": _ref("Trigger")}}),
    "RefusalList": _object(
        {
            "trigger": _STRING,
            "items": {
                "type": "array",
                "items": _object(
                    {
                        "at": _STRING,
                        "status": _INTEGER,
                        "reason": _STRING,
                        "source_address": _nullable("string"),
                        "request_id": _nullable("string"),
                    }
                ),
            },
        }
    ),
    "DryRunReport": _object(
        {
            "trigger": _STRING,
            "auth": _OBJECT,
            "filter": _OBJECT,
            "dedup": _OBJECT,
            "would": _STRING,
        }
    ),
    "Delivery": _object(
        {
            "id": _STRING,
            "trigger": _STRING,
            "received_at": _STRING,
            "outcome": _STRING,
            "execution_id": _nullable("string"),
            "replay_of": _nullable("string"),
        }
    ),
    "DeliveryDetail": {
        "allOf": [
            _ref("Delivery"),
            _object({"headers": _OBJECT, "query": _OBJECT, "body": _nullable("string")}),
        ]
    },
    "DeliveryPage": _page("Delivery"),
    "Execution": _object(
        {
            "id": _STRING,
            "trigger": _STRING,
            "delivery_id": _STRING,
            "status": _STRING,
            "attempt": _INTEGER,
            "created_at": _STRING,
            "exit_code": _nullable("integer"),
        }
    ),
    "ExecutionDetail": {"allOf": [_ref("Execution"), _object({"report": _nullable("object")})]},
    "ExecutionPage": _page("Execution"),
    "LogPage": _object(
        {
            "status": _STRING,
            "items": {
                "type": "array",
                "items": _object(
                    {"seq": _INTEGER, "ts": _STRING, "stream": _STRING, "line": _STRING}
                ),
            },
            "last_seq": _INTEGER,
        }
    ),
    "Accepted": _object(
        {
            "status": _STRING,
            "delivery_id": _STRING,
            "execution_id": _nullable("string"),
            "stream_url": _nullable("string"),
        },
        replay_of=_STRING,
    ),
    "Rerun": _object({"execution_id": _STRING, "rerun_of": _STRING, "stream_url": _STRING}),
    "CancelRequested": _object({"id": _STRING, "status": {"enum": ["cancelled", "cancelling"]}}),
    "DedupKey": _object(
        {"trigger": _STRING, "key": _STRING, "created_at": _STRING, "expires_at": _STRING}
    ),
    "DedupKeyPage": _page("DedupKey"),
    "MetricsSummary": _object(
        {
            "last_hour": _OBJECT,
            "last_day": _OBJECT,
            "active": _OBJECT,
            "breakers": _OBJECT,
            "daily": {"type": "array"},
        }
    ),
    "Health": _object({"status": {"const": "ok"}}),
    "Ready": _object({"status": {"const": "ready"}, "schema_version": _INTEGER}),
}


def _json(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _empty(description: str) -> dict[str, Any]:
    return {"description": description}


def event_stream(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/event-stream": {"schema": _STRING}}}


# (method, path) -> success responses, by status.
SUCCESS: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/admin/triggers"): {"200": _json("Every trigger", "TriggerList")},
    ("post", "/admin/triggers"): {"201": _json("Created (Location names it)", "Trigger")},
    ("get", "/admin/triggers/{name}"): {"200": _json("The trigger, without secrets", "Trigger")},
    ("patch", "/admin/triggers/{name}"): {"200": _json("The changed trigger", "Trigger")},
    ("put", "/admin/triggers/{name}"): {
        "200": _json("Replaced (or unchanged)", "Trigger"),
        "201": _json("Created (Location names it)", "Trigger"),
    },
    ("get", "/admin/triggers/{name}/recent-refusals"): {
        "200": _json("The last refused requests to this name, newest first", "RefusalList")
    },
    ("delete", "/admin/triggers/{name}"): {"204": _empty("Deleted with its dedup keys")},
    ("post", "/admin/triggers/{name}/test"): {"200": _json("What would happen", "DryRunReport")},
    ("get", "/admin/deliveries"): {"200": _json("Deliveries, newest first", "DeliveryPage")},
    ("get", "/admin/deliveries/{delivery_id}"): {
        "200": _json("The delivery with headers (redacted) and body", "DeliveryDetail")
    },
    ("post", "/admin/deliveries/{delivery_id}/replay"): {
        "202": _json("A new delivery and execution, replay_of set", "Accepted")
    },
    ("get", "/admin/executions"): {"200": _json("Executions, newest first", "ExecutionPage")},
    ("get", "/admin/executions/{execution_id}"): {
        "200": _json("The execution with its processing report", "ExecutionDetail")
    },
    ("get", "/admin/executions/{execution_id}/logs"): {
        "200": _json("Output lines after the seq", "LogPage")
    },
    ("get", "/admin/executions/{execution_id}/stream"): {
        "200": event_stream("Output lines and the final status as Server-Sent Events")
    },
    ("post", "/admin/executions/{execution_id}/cancel"): {
        "202": _json("Cancellation requested", "CancelRequested")
    },
    ("post", "/admin/executions/{execution_id}/rerun"): {
        "202": _json("A new execution of the same delivery", "Rerun")
    },
    ("get", "/admin/stream"): {"200": event_stream("Status changes as Server-Sent Events")},
    ("get", "/admin/dedup-keys"): {"200": _json("Live dedup keys, newest first", "DedupKeyPage")},
    ("delete", "/admin/dedup-keys"): {"204": _empty("Forgotten")},
    ("get", "/admin/metrics/summary"): {"200": _json("Counts and history", "MetricsSummary")},
}

# (method, path) -> the 409 and 429 an operation can answer, with their codes.
CONFLICTS: dict[tuple[str, str], dict[str, str]] = {
    ("post", "/admin/triggers"): {"409": "trigger_exists"},
    ("post", "/admin/executions/{execution_id}/cancel"): {"409": "conflict: it already ended"},
    ("post", "/admin/executions/{execution_id}/rerun"): {
        "409": "trigger_disabled",
        "429": "trigger_busy | queue_full (with Retry-After)",
    },
    ("post", "/admin/deliveries/{delivery_id}/replay"): {
        "409": "trigger_disabled",
        "429": "trigger_busy | queue_full (with Retry-After)",
    },
}

PROBES: dict[str, Any] = {
    "/healthz": {
        "get": {
            "tags": ["health"],
            "summary": "The process is alive",
            "operationId": "healthz",
            "responses": {"200": _json("Alive", "Health")},
        }
    },
    "/readyz": {
        "get": {
            "tags": ["health"],
            "summary": "The store is reachable and migrations are current",
            "operationId": "readyz",
            "responses": {
                "200": _json("Ready", "Ready"),
                "503": ingest_spec.error_response("store_unavailable (with Retry-After)"),
            },
        }
    },
    "/metrics": {
        "get": {
            "tags": ["health"],
            "summary": "Prometheus text exposition (no token)",
            "operationId": "metrics",
            "responses": {
                "200": {
                    "description": "Prometheus text format 0.0.4",
                    "content": {"text/plain": {"schema": _STRING}},
                }
            },
        }
    },
}


def _errors(method: str, path: str, operation: dict[str, Any]) -> dict[str, Any]:
    errors = {"401": ingest_spec.error_response("unauthorized: a valid bearer token is required")}
    if method.lower() not in ("get", "head", "options"):
        errors["403"] = ingest_spec.error_response("forbidden: a viewer token may only read")
    if "{" in path:
        errors["404"] = ingest_spec.error_response("not_found | trigger_not_found")
    parameters = operation.get("parameters", [])
    if "requestBody" in operation or any(p.get("in") == "query" for p in parameters):
        errors["422"] = ingest_spec.error_response(
            "validation_failed (details: the wrong fields' paths)"
        )
    if "requestBody" in operation:
        errors["400"] = ingest_spec.error_response("invalid_json")
    for status, codes in CONFLICTS.get((method, path), {}).items():
        errors[status] = ingest_spec.error_response(codes)
    return errors


def complete(spec: dict[str, Any]) -> None:
    """Add responses, probes, the ingest route and the schemas to a generated spec."""
    ingest_spec.add_to(spec)
    paths = spec.setdefault("paths", {})
    for path, item in paths.items():
        if not path.startswith("/admin"):
            continue
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            operation["responses"] = {
                **SUCCESS.get((method, path), {}),
                **_errors(method, path, operation),
            }
    paths.update(PROBES)
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(SCHEMAS)
    schemas.pop("ValidationErrorModel", None)
