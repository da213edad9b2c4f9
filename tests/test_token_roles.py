"""Token roles: a viewer token reads everything and changes nothing, on every admin route."""

from __future__ import annotations

import re
from typing import Any

from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from app.auth import create_token
from app.cli import main
from app.store import Database, admin_tokens

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _write_routes(app: Flask) -> list[tuple[str, str]]:
    """Every (method, path) under /admin that changes state, path parameters filled in."""
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin"):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"x-\1", rule.rule)
        routes.extend((method, path) for method in sorted((rule.methods or set()) & WRITE_METHODS))
    return routes


def test_viewer_is_refused_every_write_route_before_it_runs(
    app: Flask, client: FlaskClient, db: Database, make_trigger: Any
) -> None:
    make_trigger()
    viewer = {"Authorization": f"Bearer {create_token(db, 'watcher', 'viewer')}"}
    routes = _write_routes(app)
    assert ("POST", "/admin/triggers") in routes
    assert ("DELETE", "/admin/triggers/x-name") in routes
    for method, path in routes:
        response = client.open(path, method=method, json={}, headers=viewer)
        assert response.status_code == 403, (method, path, response.get_json())
        assert response.get_json()["error"]["code"] == "forbidden"
    # Nothing changed: the trigger is still there, as it was.
    assert client.get("/admin/triggers/deploy", headers=viewer).status_code == 200
    forbidden = client.delete("/admin/triggers/deploy", headers=viewer)
    assert forbidden.status_code == 403
    assert client.get("/admin/triggers/deploy", headers=viewer).status_code == 200


def test_viewer_reads_lists_and_details(
    client: FlaskClient, db: Database, make_trigger: Any
) -> None:
    make_trigger()
    viewer = {"Authorization": f"Bearer {create_token(db, 'watcher', 'viewer')}"}
    for path in (
        "/admin/triggers",
        "/admin/triggers/deploy",
        "/admin/deliveries",
        "/admin/executions",
        "/admin/dedup-keys",
        "/admin/metrics/summary",
    ):
        assert client.get(path, headers=viewer).status_code == 200, path


def test_admin_tokens_and_existing_tokens_keep_full_access(
    client: FlaskClient, db: Database, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    make_trigger()  # created with the fixture's token, made without a role: admin
    assert client.delete("/admin/triggers/deploy", headers=auth_headers).status_code == 204
    assert {row["role"] for row in admin_tokens.list_all(db)} == {"admin"}


def test_environment_token_is_admin(make_app: Any) -> None:
    app = make_app(admin_token="env-admin-token-0123456789abcdef")
    client = app.test_client()
    headers = {"Authorization": "Bearer env-admin-token-0123456789abcdef"}
    document = {
        "name": "deploy",
        "auth": {"scheme": "none"},
        "action": {"type": "command", "argv": ["/bin/true"]},
    }
    assert client.post("/admin/triggers", json=document, headers=headers).status_code == 201


def test_create_token_role_viewer_from_the_cli(
    database_url: str, monkeypatch: Any, app: Flask
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    runner = CliRunner()
    created = runner.invoke(main, ["create-token", "--name", "watcher", "--role", "viewer"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/admin/triggers", headers=headers).status_code == 200
    assert client.post("/admin/triggers", json={}, headers=headers).status_code == 403
    listing = runner.invoke(main, ["list-tokens"])
    assert "watcher  viewer" in listing.stdout
    refused = runner.invoke(main, ["create-token", "--role", "owner"])
    assert refused.exit_code != 0
