"""Shared fixtures: every test app runs on a fresh store, once on SQLite and once on PostgreSQL.

The ``database_url`` fixture is parametrized over the stores named in
``HOOKRUNNER_TEST_STORES`` (default ``sqlite,postgresql``): a SQLite file in a
temp dir, or a PostgreSQL database cloned from a migrated template (fast) and
dropped afterwards. Without a reachable PostgreSQL server
(``HOOKRUNNER_TEST_POSTGRES_URL``, default ``postgresql://postgres@127.0.0.1:5432/postgres``)
the PostgreSQL cases are skipped with the reason, unless
``HOOKRUNNER_REQUIRE_POSTGRES=1`` (CI) makes that a failure. Tests of a
SQLite-only mechanism are marked ``sqlite_only``.
"""

from __future__ import annotations

import collections
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.auth import create_token
from app.store import Database, get_db
from app.wiring import engine_of

# Environment variables that would leak a developer's settings into tests.
_ISOLATED_ENV = (
    "DATABASE_URL",
    "ADMIN_TOKEN",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "SENTRY_DSN",
    "MAX_BODY_BYTES",
    "SCHEDULER_ENABLED",
    "ENGINE_ENABLED",
    "EXECUTION_POOL_SIZE",
    "ALLOW_PRIVATE_TARGETS",
    "SESSION_SECRET",
    "SESSION_MAX_AGE_SECONDS",
    "SESSION_COOKIE_SECURE",
)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ISOLATED_ENV:
        monkeypatch.delenv(name, raising=False)


PG_ADMIN_URL = os.environ.get(
    "HOOKRUNNER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
STORES = [
    s.strip() for s in os.environ.get("HOOKRUNNER_TEST_STORES", "sqlite,postgresql").split(",")
]


def _pg_url(name: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


class PostgresServer:
    """The test server: a migrated template database, cloned per test."""

    def __init__(self) -> None:
        import psycopg

        self.template = f"hr_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self._admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
        self._admin.execute(f'CREATE DATABASE "{self.template}"')
        from app.store.migrations import migrate
        from app.store.postgres.database import PostgresDatabase

        template = PostgresDatabase(_pg_url(self.template), pool_size=1)
        try:
            migrate(template)
        finally:
            template.close()

    def create(self, migrated: bool = True) -> str:
        """A new database: a clone of the migrated template, or empty (``migrated=False``)."""
        name = f"hr_test_{uuid.uuid4().hex[:12]}"
        template = f' TEMPLATE "{self.template}"' if migrated else ""
        self._admin.execute(f'CREATE DATABASE "{name}"{template}')
        return name

    def drop(self, name: str) -> None:
        self._admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        self.drop(self.template)
        self._admin.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer()
    except Exception as exc:
        if os.environ.get("HOOKRUNNER_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required (HOOKRUNNER_REQUIRE_POSTGRES=1): {exc}")
        pytest.skip(f"no PostgreSQL server at {PG_ADMIN_URL} ({type(exc).__name__}: {exc})")
    yield server
    server.close()


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql" and request.node.get_closest_marker("sqlite_only"):
        pytest.skip("exercises a SQLite-only mechanism")
    return str(request.param)


@pytest.fixture
def database_url(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    if store_kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'hookrunner.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = server.create()
    yield _pg_url(name)
    server.drop(name)


@pytest.fixture
def empty_database_url(
    store_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A store with no tables at all (for tests of the migrations themselves)."""
    if store_kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = server.create(migrated=False)
    yield _pg_url(name)
    server.drop(name)


@pytest.fixture
def make_app(database_url: str) -> Iterator[Any]:
    """Factory for apps on the test database (several may share it, like workers)."""
    apps: list[Flask] = []

    def factory(**overrides: Any) -> Flask:
        settings = {
            "database_url": database_url,
            "scheduler_enabled": False,
            "engine_enabled": False,
            **overrides,
        }
        app = create_app(settings)
        app.config["TESTING"] = True
        apps.append(app)
        return app

    yield factory
    for app in apps:
        engine = engine_of(app)
        if engine is not None:
            engine.shutdown(grace_seconds=10)
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


GITHUB_SECRET = "It's a Secret to Everybody"


def github_headers(body: bytes, delivery: str, secret: str = GITHUB_SECRET) -> dict[str, str]:
    """Headers GitHub would send for ``body`` (signature per GitHub's documentation)."""
    import hashlib
    import hmac

    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": f"sha256={signature}",
    }


PUSH = b'{"ref": "refs/heads/main", "after": "abc123"}'


def send_push(client: FlaskClient, delivery: str) -> dict[str, Any]:
    """POST a GitHub-signed push (:data:`PUSH`) to the ``deploy`` trigger; its JSON answer."""
    response = client.post("/webhooks/deploy", data=PUSH, headers=github_headers(PUSH, delivery))
    return response.get_json()  # type: ignore[no-any-return]


def trigger_document(name: str = "deploy", **fields: Any) -> dict[str, Any]:
    """A valid GitHub-signed command trigger; ``fields`` replace top-level keys."""
    document: dict[str, Any] = {
        "name": name,
        "auth": {"scheme": "github", "secrets": [GITHUB_SECRET]},
        "action": {"type": "command", "argv": ["/bin/echo", "{{ body.after }}"]},
    }
    document.update(fields)
    return document


@pytest.fixture
def make_trigger(client: FlaskClient, auth_headers: dict[str, str]) -> Any:
    """Create a trigger through the API; returns its public view."""

    def factory(name: str = "deploy", **fields: Any) -> dict[str, Any]:
        response = client.post(
            "/admin/triggers", json=trigger_document(name, **fields), headers=auth_headers
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()  # type: ignore[no-any-return]

    return factory


def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.02) -> Any:
    """Poll until ``predicate()`` is truthy and return it; fail after ``timeout`` seconds.

    A bound on waiting, not a timing assertion: the value is what tests check.
    """
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


@pytest.fixture
def engine_app(make_app: Any) -> Flask:
    """An app whose execution engine runs (threads here, greenlets under Gunicorn)."""
    return make_app(engine_enabled=True, admin_token="engine-test-token-0123456789")  # type: ignore[no-any-return]


ENGINE_AUTH = {"Authorization": "Bearer engine-test-token-0123456789"}


ProtocolCounter = Callable[[], collections.Counter[str]]


@pytest.fixture
def protocol(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, store_kind: str
) -> Iterator[ProtocolCounter]:
    """Trace every pooled PostgreSQL connection; the call returns the client's messages."""
    if store_kind != "postgresql":
        pytest.skip("counts PostgreSQL protocol messages")
    from psycopg import pq

    from app.store.postgres import database as pg
    from app.store.postgres.notify import PgNotifyBackend

    # Wake-ups are published by a background thread on a pooled connection: not counted.
    monkeypatch.setattr(PgNotifyBackend, "publish", lambda self, topic: None)
    path = tmp_path / "libpq.trace"
    trace = path.open("w")
    borrow = pg.PostgresDatabase._borrow

    @contextmanager
    def traced(self: pg.PostgresDatabase) -> Iterator[Any]:
        with borrow(self) as raw:
            raw.pgconn.trace(trace.fileno())
            raw.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
            try:
                yield raw
            finally:
                raw.pgconn.untrace()

    def messages() -> collections.Counter[str]:
        trace.flush()
        lines = path.read_text().splitlines()
        path.write_text("")
        trace.seek(0)
        trace.truncate()
        sent = [line.split("\t") for line in lines if line.startswith("F\t")]
        return collections.Counter(fields[2] for fields in sent if len(fields) > 2)

    monkeypatch.setattr(pg.PostgresDatabase, "_borrow", traced)
    with trace:
        yield messages


def round_trips(messages: collections.Counter[str]) -> int:
    """Messages that each wait for the server: a simple ``Query`` or a ``Sync``."""
    return messages["Query"] + messages["Sync"]
