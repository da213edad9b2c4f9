"""The SQLite store: connection pragmas, the write lock, unavailable stores."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest

from app.errors import ServiceUnavailable
from app.store import Database, SQLiteDatabase


@pytest.fixture
def store(tmp_path: Path) -> Database:
    db = SQLiteDatabase(str(tmp_path / "s.db"), synchronous="FULL", busy_timeout_ms=1234)
    with db.write() as conn:
        conn.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")
    return db


def test_connections_are_configured(store: Database) -> None:
    with store.read() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 1234


def test_write_commits_on_success(store: Database) -> None:
    with store.write() as conn:
        conn.execute("INSERT INTO t (n) VALUES (1)")
    with store.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 1


def test_write_rolls_back_on_error(store: Database) -> None:
    with pytest.raises(RuntimeError), store.write() as conn:
        conn.execute("INSERT INTO t (n) VALUES (1)")
        raise RuntimeError("boom")
    with store.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 0


def test_concurrent_writers_are_serialised(store: Database) -> None:
    def insert_many(start: int) -> None:
        for n in range(start, start + 50):
            with store.write() as conn:
                current = conn.execute("SELECT COUNT(*) FROM t").fetchone()[0]
                conn.execute("INSERT INTO t (n) VALUES (?)", (n,))
                assert conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == current + 1

    threads = [threading.Thread(target=insert_many, args=(i * 100,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with store.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 200


def test_unreachable_store_is_service_unavailable(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with (
        pytest.raises(ServiceUnavailable) as excinfo,
        SQLiteDatabase(str(tmp_path / "dir.db")).read(),
    ):
        pass
    assert excinfo.value.status == 503
    assert excinfo.value.headers["Retry-After"]


def test_one_process_of_many_checkpoints_a_database_file(tmp_path: Path) -> None:
    from app.store.sqlite.database import _CheckpointLock

    path = str(tmp_path / "hookrunner.db.checkpoint.lock")
    first, second = _CheckpointLock(path), _CheckpointLock(path)
    assert first.held()
    assert not second.held()  # a second open of the lock file: another process's view
    assert first.held()  # kept while it runs
    first.release()  # that process ended
    assert second.held()
    second.release()


def test_a_new_database_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    """The file holds trigger secrets: 0600, also its WAL, in a 0700 directory it made."""
    home = tmp_path / "new-home"
    db = SQLiteDatabase(str(home / "hookrunner.db"))
    try:
        with db.write() as conn:
            conn.execute("CREATE TABLE secrets (value TEXT)")
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in home.iterdir() if p.is_file()}
        assert modes["hookrunner.db"] == 0o600
        assert modes["hookrunner.db-wal"] == 0o600
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
    finally:
        db.close()
