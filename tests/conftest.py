"""Shared fixtures: every test app runs on its own SQLite file in a temp dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.auth import create_token
from app.db import Database, get_db

# Environment variables that would leak a developer's settings into tests.
_ISOLATED_ENV = (
    "DATABASE_URL",
    "ADMIN_TOKEN",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "SENTRY_DSN",
    "MAX_BODY_BYTES",
    "SCHEDULER_ENABLED",
    "ALLOW_PRIVATE_TARGETS",
)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ISOLATED_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hookrunner.db'}"


@pytest.fixture
def make_app(database_url: str) -> Iterator[Any]:
    """Factory for apps on the test database (several may share it, like workers)."""
    apps: list[Flask] = []

    def factory(**overrides: Any) -> Flask:
        settings = {"database_url": database_url, "scheduler_enabled": False, **overrides}
        app = create_app(settings)
        app.config["TESTING"] = True
        apps.append(app)
        return app

    yield factory
    for app in apps:
        with app.app_context():
            get_db().close()


@pytest.fixture
def app(make_app: Any) -> Flask:
    return make_app()  # type: ignore[no-any-return]


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def db(app: Flask) -> Database:
    with app.app_context():
        return get_db()


@pytest.fixture
def auth_headers(db: Database) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(db, 'tests')}"}
