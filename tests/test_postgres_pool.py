"""The PostgreSQL store's pool: which borrowed connections are checked, and recovery."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from app.errors import ServiceUnavailable
from app.store.postgres import database as pg
from tests.conftest import PG_ADMIN_URL, PostgresServer, _pg_url


@pytest.fixture
def store(postgres_server: PostgresServer) -> Iterator[pg.PostgresDatabase]:
    name = postgres_server.create()
    db = pg.PostgresDatabase(_pg_url(name), pool_size=1)
    try:
        yield db
    finally:
        db.close()
        postgres_server.drop(name)


def _backend_pid(db: pg.PostgresDatabase) -> int:
    with db.read() as conn:
        return int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])


def _terminate(pid: int) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_a_connection_broken_since_its_last_use_fails_one_block_then_is_replaced(
    store: pg.PostgresDatabase,
) -> None:
    first = _backend_pid(store)
    _terminate(first)  # just used: borrowed again without a check
    with pytest.raises(ServiceUnavailable):
        _backend_pid(store)
    assert _backend_pid(store) != first  # the pool opened a new one; nothing stays broken


def test_a_connection_idle_for_a_while_is_checked_before_it_is_lent(
    store: pg.PostgresDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _backend_pid(store)
    monkeypatch.setattr(pg, "CHECK_IDLE_SECONDS", 0.0)  # every connection counts as idle
    _terminate(first)
    assert _backend_pid(store) != first  # the check found it dead: no error reached us


def test_connections_run_at_read_committed_whatever_the_database_default(
    postgres_server: PostgresServer,
) -> None:
    """Claims count after an advisory lock: a snapshot older than the lock would miss claims."""
    name = postgres_server.create()
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_isolation = serializable')
    db = pg.PostgresDatabase(_pg_url(name), pool_size=1)
    try:
        with psycopg.connect(_pg_url(name)) as plain:  # what the database hands out by itself
            assert plain.execute("SHOW transaction_isolation").fetchone() == ("serializable",)
        with db.read() as conn:
            assert conn.execute("SHOW transaction_isolation").fetchone()[0] == "read committed"
        with db.write() as conn:
            assert conn.execute("SHOW transaction_isolation").fetchone()[0] == "read committed"
    finally:
        db.close()
        postgres_server.drop(name)
