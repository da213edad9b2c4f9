"""A real Gunicorn gevent server started exactly as users start it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from tests.server import gunicorn_server

pytestmark = pytest.mark.slow


def test_gunicorn_serves_json_logs_with_request_ids(tmp_path: Path) -> None:
    with gunicorn_server(tmp_path, env={"ADMIN_TOKEN": "e2e-token-0123456789"}) as server:
        ok = requests.get(
            f"{server.base_url}/healthz", headers={"X-Request-ID": "e2e-1"}, timeout=5
        )
        denied = requests.get(f"{server.base_url}/admin/anything", timeout=5)
    assert ok.status_code == 200
    assert ok.headers["X-Request-ID"] == "e2e-1"
    assert denied.status_code == 401
    assert denied.json()["error"]["code"] == "unauthorized"
    assert denied.json()["error"]["request_id"] == denied.headers["X-Request-ID"]

    records = [json.loads(line) for line in server.log_lines() if line.startswith("{")]
    access = [r for r in records if r.get("logger") == "hookrunner.access"]
    assert {"path": "/healthz", "status": 200, "request_id": "e2e-1"}.items() <= next(
        r for r in access if r["path"] == "/healthz"
    ).items()
    assert any(r["path"] == "/admin/anything" and r["status"] == 401 for r in access)
    # Every line the server printed is JSON: no plain Gunicorn access log in between.
    assert all(line.startswith("{") for line in server.log_lines() if line.strip())


def test_restart_on_same_database_is_a_no_op_migration(tmp_path: Path) -> None:
    with gunicorn_server(tmp_path) as first:
        version = requests.get(f"{first.base_url}/readyz", timeout=5).json()["schema_version"]
    with gunicorn_server(tmp_path) as second:
        assert (
            requests.get(f"{second.base_url}/readyz", timeout=5).json()["schema_version"] == version
        )
