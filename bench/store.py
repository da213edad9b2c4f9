"""Read-only looks at a running Hookrunner's store: executions, their times, output.

A store is a SQLite file (a ``Path``) or a PostgreSQL URL (a ``str``); the
queries are the same (``?`` placeholders, see ``app/store/base.py``).

The benchmarks read the database directly (``mode=ro``), not the admin API, so
that watching the queue costs the measured worker nothing. Timestamps are the
server's own (``datetime.now(UTC)``), on the same clock as the client's
``time.time()``.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

FINAL_STATUSES = ("succeeded", "failed", "timed_out", "cancelled", "interrupted")


def epoch(iso: str) -> float:
    """A stored ``...Z`` timestamp as seconds since the epoch."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@contextmanager
def read_only(db_path: Path | str) -> Iterator[Any]:
    if isinstance(db_path, str):  # a PostgreSQL URL
        from app.store.postgres.database import PostgresDatabase

        database = PostgresDatabase(db_path, pool_size=1)
        try:
            with database.read() as pg:
                yield pg
        finally:
            database.close()
        return
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    try:
        yield conn
    finally:
        conn.close()


PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
FRESH_POSTGRES = "postgresql:fresh"  # a server env DATABASE_URL: a new database per server


def create_postgres(name: str, admin_url: str = PG_ADMIN_URL) -> str:
    """A new empty PostgreSQL database; returns its URL."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{admin_url.rpartition('/')[0]}/{name}"


def drop_postgres(name: str, admin_url: str = PG_ADMIN_URL) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def count_rows(db_path: Path) -> dict[str, dict[str, int]]:
    """Deliveries by outcome and executions by status."""
    with read_only(db_path) as conn:
        deliveries = conn.execute("SELECT outcome, count(*) FROM deliveries GROUP BY outcome")
        executions = conn.execute("SELECT status, count(*) FROM executions GROUP BY status")
        return {
            "deliveries": {str(k): int(v) for k, v in deliveries.fetchall()},
            "executions": {str(k): int(v) for k, v in executions.fetchall()},
        }


def statuses(conn: sqlite3.Connection, trigger: str) -> dict[str, int]:
    rows = conn.execute(
        "SELECT status, count(*) FROM executions WHERE trigger = ? GROUP BY status", (trigger,)
    )
    return {str(status): int(count) for status, count in rows}


def wait_finished(
    db_path: Path, trigger: str, expected: int, timeout_s: float, poll_s: float = 0.1
) -> tuple[bool, dict[str, int]]:
    """Poll until ``expected`` executions of ``trigger`` have a final status (or time out)."""
    deadline = time.monotonic() + timeout_s
    with read_only(db_path) as conn:
        while True:
            counts = statuses(conn, trigger)
            done = sum(counts.get(status, 0) for status in FINAL_STATUSES)
            if done >= expected or time.monotonic() >= deadline:
                return done >= expected, counts
            time.sleep(poll_s)


@dataclass(frozen=True)
class Timing:
    id: str
    status: str
    created: float
    started: float | None
    finished: float | None
    first_line: str | None  # the first line of output (stdout), if any


def timings(db_path: Path, trigger: str) -> list[Timing]:
    """created/started/finished (epoch seconds) and first output line of every execution."""
    with read_only(db_path) as conn:
        rows = conn.execute(
            "SELECT e.id, e.status, e.created_at, e.started_at, e.finished_at,"
            " (SELECT line FROM execution_logs l WHERE l.execution_id = e.id"
            "  AND l.stream = 'stdout' ORDER BY seq LIMIT 1)"
            " FROM executions e WHERE e.trigger = ?",
            (trigger,),
        ).fetchall()
    return [
        Timing(
            id=str(row[0]),
            status=str(row[1]),
            created=epoch(row[2]),
            started=epoch(row[3]) if row[3] else None,
            finished=epoch(row[4]) if row[4] else None,
            first_line=row[5],
        )
        for row in rows
    ]
