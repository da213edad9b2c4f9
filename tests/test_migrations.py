"""The migration runner: order, immutability, dialect files, newer databases refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.store import Database, SQLiteDatabase
from app.store.migrations import (
    Migration,
    MigrationError,
    current_version,
    load_migrations,
    migrate,
    pending,
)


@pytest.fixture
def fresh_db(tmp_path: Path) -> Database:
    return SQLiteDatabase(str(tmp_path / "m.db"))


def _tables(db: Database) -> set[str]:
    with db.read() as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {row["name"] for row in rows}


def test_empty_database_gets_every_table(fresh_db: Database) -> None:
    applied = migrate(fresh_db)
    assert applied == [m.version for m in load_migrations()]
    assert {
        "triggers",
        "deliveries",
        "executions",
        "execution_logs",
        "admin_tokens",
        "webhook_dedup_keys",
    } <= _tables(fresh_db)


def test_each_applied_migration_is_logged(
    fresh_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("INFO", logger="app.store.migrations"):
        migrate(fresh_db)
        migrate(fresh_db)  # nothing to apply: nothing logged
    logged = [r for r in caplog.records if r.getMessage() == "migration applied"]
    assert [r.version for r in logged] == [m.version for m in load_migrations()]  # type: ignore[attr-defined]


def test_second_run_is_a_no_op(fresh_db: Database) -> None:
    migrate(fresh_db)
    assert migrate(fresh_db) == []
    assert pending(fresh_db) == []
    with fresh_db.read() as conn:
        count = conn.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0]
    assert count == len(load_migrations())


def test_database_newer_than_code_is_refused(fresh_db: Database) -> None:
    migrate(fresh_db)
    future = len(load_migrations()) + 1
    with fresh_db.write() as conn:
        conn.execute(
            "INSERT INTO schema_migrations VALUES (?, 'from_the_future', 'x', '2030-01-01')",
            (future,),
        )
    with pytest.raises(MigrationError, match=f"version {future}, newer"):
        migrate(fresh_db)
    with pytest.raises(MigrationError):
        pending(fresh_db)


def test_edited_migration_is_refused(fresh_db: Database) -> None:
    original = [Migration(1, "one", "CREATE TABLE a (x INTEGER);\n")]
    migrate(fresh_db, original)
    edited = [Migration(1, "one", "CREATE TABLE a (x INTEGER, y TEXT);\n")]
    with pytest.raises(MigrationError, match="immutable"):
        migrate(fresh_db, edited)


def test_each_file_is_all_or_nothing(fresh_db: Database) -> None:
    migrations = [
        Migration(1, "one", "CREATE TABLE a (x INTEGER);\n"),
        Migration(2, "two", "CREATE TABLE b (x INTEGER);\nINSERT INTO missing VALUES (1);\n"),
    ]
    with pytest.raises(Exception, match="missing"):
        migrate(fresh_db, migrations)
    assert current_version(fresh_db) == 1
    assert "b" not in _tables(fresh_db)
    assert "a" in _tables(fresh_db)


def test_applies_only_what_is_new(fresh_db: Database) -> None:
    first = [Migration(1, "one", "CREATE TABLE a (x INTEGER);\n")]
    migrate(fresh_db, first)
    both = [*first, Migration(2, "two", "CREATE TABLE b (x INTEGER);\n")]
    assert pending(fresh_db, both) == [2]
    assert migrate(fresh_db, both) == [2]


def test_files_must_be_numbered_without_gaps(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("CREATE TABLE a (x INTEGER);\n")
    (tmp_path / "0003_c.sql").write_text("CREATE TABLE c (x INTEGER);\n")
    with pytest.raises(MigrationError, match="0002 is missing"):
        load_migrations(tmp_path)


def test_files_may_not_control_transactions(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("BEGIN;\nCREATE TABLE a (x INTEGER);\nCOMMIT;\n")
    with pytest.raises(MigrationError, match="BEGIN"):
        load_migrations(tmp_path)


def test_badly_named_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "1_a.sql").write_text("CREATE TABLE a (x INTEGER);\n")
    with pytest.raises(MigrationError, match="NNNN_name"):
        load_migrations(tmp_path)


def test_trigger_bodies_are_not_transaction_control(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text(
        "CREATE TABLE a (x INTEGER);\nCREATE TABLE n (c INTEGER);\n"
        "CREATE TRIGGER a_count AFTER INSERT ON a\nBEGIN\n    INSERT INTO n VALUES (1);\nEND;\n"
    )
    (migration,) = load_migrations(tmp_path)
    db = SQLiteDatabase(str(tmp_path / "t.db"))
    migrate(db, [migration])
    with db.write() as conn:
        conn.execute("INSERT INTO a VALUES (1)")
    with db.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM n").fetchone()[0] == 1


def test_dialect_files_pair_up_and_each_store_gets_its_own(tmp_path: Path) -> None:
    (tmp_path / "0001_base.sql").write_text("CREATE TABLE a (id TEXT);\n")
    (tmp_path / "0002_blob.sqlite.sql").write_text("CREATE TABLE b (data BLOB);\n")
    (tmp_path / "0002_blob.postgresql.sql").write_text("CREATE TABLE b (data BYTEA);\n")
    sqlite = load_migrations(tmp_path, dialect="sqlite")
    postgres = load_migrations(tmp_path, dialect="postgresql")
    assert [m.name for m in sqlite] == [m.name for m in postgres] == ["base", "blob"]
    assert "BLOB" in sqlite[1].sql and "BYTEA" in postgres[1].sql
    assert sqlite[0].sha256 == postgres[0].sha256


def test_a_dialect_file_without_its_pair_is_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_only.sqlite.sql").write_text("CREATE TABLE a (id TEXT);\n")
    with pytest.raises(MigrationError, match="one file per dialect"):
        load_migrations(tmp_path, dialect="sqlite")


def test_the_shipped_migrations_of_both_dialects_have_the_same_numbers_and_names() -> None:
    sqlite = load_migrations(dialect="sqlite")
    postgres = load_migrations(dialect="postgresql")
    assert [(m.version, m.name) for m in sqlite] == [(m.version, m.name) for m in postgres]
