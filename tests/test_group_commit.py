"""Group commit: each caller's writes commit, or fail, on their own."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from app.store import Database, SQLiteDatabase
from app.store.sqlite.group_commit import GroupCommitter


@pytest.fixture
def store(tmp_path: Path) -> Database:
    db = SQLiteDatabase(str(tmp_path / "g.db"))
    with db.write() as conn:
        conn.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")
    return db


def _count(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute("SELECT COUNT(*) FROM t").fetchone()[0])


def test_result_is_returned_after_commit(store: Database) -> None:
    committer = GroupCommitter(store)
    assert committer.run(lambda conn: conn.execute("INSERT INTO t VALUES (1)").rowcount) == 1
    assert _count(store) == 1


def test_a_failing_job_rolls_back_only_its_own_writes(store: Database) -> None:
    committer = GroupCommitter(store)
    start = threading.Barrier(20)
    errors: list[BaseException] = []

    def job(n: int) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO t VALUES (?)", (n * 10,))
            if n % 4 == 0:
                conn.execute("INSERT INTO t VALUES (?)", (n * 10,))  # duplicate key: fails

        start.wait()
        try:
            committer.run(write)
        except sqlite3.IntegrityError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=job, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 5
    with store.read() as conn:
        rows = {row[0] for row in conn.execute("SELECT n FROM t").fetchall()}
    assert rows == {n * 10 for n in range(20) if n % 4 != 0}


def test_store_failure_reaches_every_caller(tmp_path: Path) -> None:
    db = SQLiteDatabase(str(tmp_path / "locked.db"), busy_timeout_ms=50)
    with db.write() as conn:
        conn.execute("CREATE TABLE t (n INTEGER)")
    blocker = db.connect()
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(Exception, match="unavailable"):
            GroupCommitter(db).run(lambda conn: conn.execute("INSERT INTO t VALUES (1)"))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
