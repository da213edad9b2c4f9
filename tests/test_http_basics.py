"""Request ids, access lines, the error envelope, health probes."""

from __future__ import annotations

import json
import logging
import uuid

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.logging_config import json_formatter
from app.store import Database


def _access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "hookrunner.access"]


def test_well_formed_request_id_is_kept(client: FlaskClient) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "abc.DEF-123_x"})
    assert response.headers["X-Request-ID"] == "abc.DEF-123_x"


@pytest.mark.parametrize("bad", ["", "has space", "x" * 129, "semi;colon", "ünï"])
def test_malformed_request_id_is_replaced(client: FlaskClient, bad: str) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": bad})
    assert response.headers["X-Request-ID"] != bad
    uuid.UUID(response.headers["X-Request-ID"])


def test_access_line_is_json_with_request_id(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="hookrunner.access"):
        response = client.get("/healthz", headers={"X-Request-ID": "req-1"})
    (record,) = _access_records(caplog)
    line = json.loads(json_formatter().format(record))
    assert line["message"] == "request"
    assert line["request_id"] == "req-1"
    assert line["method"] == "GET"
    assert line["path"] == "/healthz"
    assert line["status"] == response.status_code == 200
    assert isinstance(line["duration_ms"], float)
    assert {"timestamp", "level", "logger"} <= set(line)


def test_request_id_does_not_leak_after_request(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    client.get("/healthz", headers={"X-Request-ID": "req-2"})
    with caplog.at_level(logging.INFO):
        logging.getLogger("background").info("job ran")
    record = next(r for r in caplog.records if r.name == "background")
    assert json.loads(json_formatter().format(record))["request_id"] is None


def _assert_envelope(response, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status
    body = response.get_json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["error"]["request_id"] == response.headers["X-Request-ID"]


def test_unknown_route_is_404_envelope(client: FlaskClient) -> None:
    _assert_envelope(client.get("/nope"), 404, "not_found")


def test_wrong_method_is_405_envelope(client: FlaskClient) -> None:
    response = client.delete("/healthz")
    _assert_envelope(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


def test_oversized_body_is_413_envelope(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(max_body_bytes=10)

    @app.post("/echo")
    def echo() -> str:
        from flask import request

        return str(len(request.get_data()))

    _assert_envelope(app.test_client().post("/echo", data=b"x" * 11), 413, "payload_too_large")


def test_unhandled_error_is_500_without_internals(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    @app.get("/explode")
    def explode() -> str:
        raise RuntimeError("secret internal detail")

    with caplog.at_level(logging.ERROR):
        response = app.test_client().get("/explode")
    _assert_envelope(response, 500, "internal_error")
    assert "secret internal detail" not in response.get_data(as_text=True)
    assert any("secret internal detail" in (r.exc_text or "") for r in caplog.records)


def test_healthz(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_readyz_when_current(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ready"


def test_readyz_refuses_a_database_newer_than_the_code(client: FlaskClient, db: Database) -> None:
    with db.write() as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (999, 'future', 'x', '2030-01-01')")
    response = client.get("/readyz")
    _assert_envelope(response, 503, "store_unavailable")
    assert response.headers["Retry-After"]


def test_openapi_spec_and_docs_are_served(client: FlaskClient) -> None:
    spec = client.get("/openapi.json")
    assert spec.status_code == 200
    assert spec.get_json()["info"]["title"] == "Hookrunner"
    assert "401" in spec.get_json()["paths"]["/webhooks/{trigger}"]["post"]["responses"]
    assert client.get("/docs/").status_code == 200
    assert "/webhooks/{trigger}" in client.get("/docs/openapi.json").get_json()["paths"]
