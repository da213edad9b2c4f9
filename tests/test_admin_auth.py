"""No admin route answers without a valid bearer token."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.auth import create_token, digest
from app.store import Database, admin_tokens


def _admin_requests(app: Flask) -> list[tuple[str, str]]:
    requests = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin"):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", "x", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            requests.append((method, path))
    return requests


def test_every_admin_route_requires_a_token(app: Flask, client: FlaskClient) -> None:
    requests = [*_admin_requests(app), ("GET", "/admin/anything"), ("POST", "/admin")]
    for method, path in requests:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
            response = client.open(path, method=method, headers=headers, json={})
            assert response.status_code == 401, (method, path, headers)
            assert response.get_json()["error"]["code"] == "unauthorized"
            assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_created_token_is_accepted_and_only_its_digest_is_stored(
    client: FlaskClient, db: Database
) -> None:
    token = create_token(db, "ci")
    with db.read() as conn:
        stored = conn.execute("SELECT token_sha256 FROM admin_tokens").fetchone()[0]
    assert stored == digest(token) != token
    response = client.get("/admin/anything", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 404


def test_revoked_token_is_refused(client: FlaskClient, db: Database) -> None:
    token = create_token(db, "old")
    (row,) = admin_tokens.list_all(db)
    assert admin_tokens.revoke(db, str(row["id"]))
    response = client.get("/admin/anything", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


@pytest.mark.parametrize("presented, status", [("env-secret-token", 404), ("env-secret", 401)])
def test_admin_token_from_environment(make_app, presented: str, status: int) -> None:  # type: ignore[no-untyped-def]
    client = make_app(admin_token="env-secret-token").test_client()
    response = client.get("/admin/anything", headers={"Authorization": f"Bearer {presented}"})
    assert response.status_code == status
