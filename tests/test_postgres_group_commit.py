"""Group commit on PostgreSQL: concurrent one-statement writes share one transaction."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from app.store.postgres import database as pg
from tests.conftest import PostgresServer, _pg_url


@pytest.fixture
def store(postgres_server: PostgresServer) -> Iterator[pg.PostgresDatabase]:
    name = postgres_server.create()
    db = pg.PostgresDatabase(_pg_url(name), pool_size=4)
    try:
        yield db
    finally:
        db.close()
        postgres_server.drop(name)


def _while_busy(
    db: pg.PostgresDatabase, statements: list[tuple[str, tuple[Any, ...]]]
) -> list[Any]:
    """Run ``statements`` from threads while the committer is busy with a slow one.

    They all arrive during the slow statement, so they form the next group. Each
    answer is its first row, or the exception its caller got.
    """
    answers: list[Any] = [None] * len(statements)

    def call(index: int, sql: str, parameters: tuple[Any, ...]) -> None:
        try:
            answers[index] = db.write_statement(sql, parameters, order=str(index))
        except Exception as exc:
            answers[index] = exc

    slow = threading.Thread(target=call, args=(0, "SELECT pg_sleep(0.5)", ()))
    answers.insert(0, None)
    slow.start()
    threading.Event().wait(0.1)  # the slow statement is on its way
    threads = [
        threading.Thread(target=call, args=(index, sql, parameters))
        for index, (sql, parameters) in enumerate(statements, start=1)
    ]
    for thread in [*threads]:
        thread.start()
    for thread in [slow, *threads]:
        thread.join(10)
    return answers[1:]


def test_concurrent_statements_commit_in_one_transaction(store: pg.PostgresDatabase) -> None:
    answers = _while_busy(
        store,
        [
            (
                "INSERT INTO queue_entries (trigger, total) VALUES (?, 0) RETURNING txid_current()",
                (f"t{n}",),
            )
            for n in range(5)
        ],
    )
    assert len({row[0] for row in answers}) == 1  # one transaction for the whole group
    with store.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM queue_entries").fetchone()[0] == 5


def test_a_failing_statement_fails_only_its_own_caller(store: pg.PostgresDatabase) -> None:
    insert = "INSERT INTO queue_entries (trigger, total) VALUES (?, 0) RETURNING trigger"
    answers = _while_busy(
        store,
        [(insert, ("a",)), ("SELECT 1 / ?", (0,)), (insert, ("b",))],
    )
    assert [answers[0][0], answers[2][0]] == ["a", "b"]
    assert isinstance(answers[1], psycopg.errors.DivisionByZero)
    with store.read() as conn:
        rows = conn.execute("SELECT trigger FROM queue_entries ORDER BY trigger").fetchall()
    assert [row[0] for row in rows] == ["a", "b"]
