"""Numbered SQL migrations and the runner that applies them.

Protocol:

* Migrations are files ``migrations/NNNN_name.sql`` numbered from 0001 without
  gaps. Where the SQL differs between stores, one number has one file per
  dialect instead, side by side: ``NNNN_name.sqlite.sql`` and
  ``NNNN_name.postgresql.sql`` (same number, same name, both present). A file is
  **immutable once landed**: change the schema with a new file.
  The runner records each file's SHA-256 and refuses to start when a recorded
  file has changed.
* A file holds plain statements and no ``BEGIN``/``COMMIT``: the runner applies
  each file in its own ``BEGIN IMMEDIATE`` transaction together with the row in
  ``schema_migrations`` that records its version, so a file is applied entirely
  or not at all.
* The runner re-reads the version inside that transaction, so several workers
  starting at once apply each file exactly once (on PostgreSQL each of those
  transactions first takes an advisory lock: concurrent runners queue).
* SQLite files are split into statements and run one by one; a PostgreSQL file
  is sent whole.
* A database whose version is newer than the newest file this code knows is
  refused with :class:`MigrationError`: old code must not write a newer schema.

Applying to an up-to-date database is a no-op.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sqlite3
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from app.clock import utc_now_iso
from app.store.base import Connection, Database

log = logging.getLogger(__name__)


def _migrations_dir() -> Path:
    """Where the migration files are, wherever the code runs from (never the working directory).

    An installed distribution ships ``migrations/*.sql`` as ``app/_migrations``
    (pyproject.toml), found through :mod:`importlib.resources`; a checkout or
    an editable install reads ``migrations/`` at the top of the repository.
    """
    installed = Path(str(files("app") / "_migrations"))
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parents[2] / "migrations"


MIGRATIONS_DIR = _migrations_dir()
_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)(?:\.(sqlite|postgresql))?\.sql$")
DIALECTS = ("sqlite", "postgresql")
# Transaction control, but not the BEGIN ... END; of a CREATE TRIGGER body.
_TXN_RE = re.compile(
    r"^\s*(BEGIN(\s+(DEFERRED|IMMEDIATE|EXCLUSIVE))?(\s+TRANSACTION)?\s*;"
    r"|COMMIT\b|END\s+TRANSACTION\b|ROLLBACK\b)",
    re.IGNORECASE | re.MULTILINE,
)

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    applied_at TEXT NOT NULL
)
"""


class MigrationError(RuntimeError):
    """The migrations or the database are not in a state the code can run on."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path = MIGRATIONS_DIR, dialect: str = "sqlite") -> list[Migration]:
    """Read and check ``dialect``'s migration files: numbered 1..N, no transaction control."""
    found: dict[int, dict[str | None, tuple[str, str]]] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_RE.match(path.name)
        if not match:
            raise MigrationError(
                f"migration file name must be NNNN_name.sql or NNNN_name.<dialect>.sql: {path.name}"
            )
        sql = path.read_text(encoding="utf-8")
        if _TXN_RE.search(sql):
            raise MigrationError(f"{path.name}: no BEGIN/COMMIT inside a migration file")
        found.setdefault(int(match.group(1)), {})[match.group(3)] = (match.group(2), sql)
    migrations = []
    for version, variants in sorted(found.items()):
        if None in variants and len(variants) > 1:
            raise MigrationError(f"migration {version:04d} has both a shared and a dialect file")
        if None not in variants and set(variants) != set(DIALECTS):
            raise MigrationError(f"migration {version:04d} needs one file per dialect")
        if len({name for name, _ in variants.values()}) != 1:
            raise MigrationError(f"migration {version:04d}: dialect files must share one name")
        name, sql = variants.get(None) or variants[dialect]
        migrations.append(Migration(version, name, sql))
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise MigrationError(f"migration {expected:04d} is missing")
    return migrations


def _split_statements(sql: str) -> list[str]:
    statements, buffer = [], ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer)
            buffer = ""
    if buffer.strip() and not all(
        ln.strip().startswith("--") or not ln.strip() for ln in buffer.splitlines()
    ):
        raise MigrationError("migration ends with an incomplete statement")
    return statements


def _applied(db: Database, conn: Connection) -> dict[int, str]:
    if not db.table_exists(conn, "schema_migrations"):
        return {}
    rows = conn.execute("SELECT version, sha256 FROM schema_migrations").fetchall()
    return {int(row["version"]): str(row["sha256"]) for row in rows}


def _check_applied(applied: dict[int, str], migrations: list[Migration]) -> None:
    known = {m.version: m for m in migrations}
    newest = max(applied, default=0)
    if newest > len(migrations):
        raise MigrationError(
            f"database schema is at version {newest}, newer than this code's "
            f"{len(migrations)}; upgrade Hookrunner instead of running an older release"
        )
    for version, digest in applied.items():
        if known[version].sha256 != digest:
            raise MigrationError(
                f"migration {version:04d}_{known[version].name}.sql changed after it was "
                "applied; migrations are immutable, add a new file instead"
            )


def current_version(db: Database) -> int:
    """The newest applied version (0 for an empty database)."""
    with db.read() as conn:
        return max(_applied(db, conn), default=0)


def migrate(db: Database, migrations: list[Migration] | None = None) -> list[int]:
    """Apply pending migrations in order; return the versions applied now."""
    migrations = load_migrations(dialect=db.dialect) if migrations is None else migrations
    with db.write() as conn:
        db.lock_migrations(conn)
        conn.execute(_BOOKKEEPING)
        _check_applied(_applied(db, conn), migrations)
    applied_now = []
    for migration in migrations:
        with db.write() as conn:
            db.lock_migrations(conn)
            if migration.version in _applied(db, conn):
                continue
            if db.dialect == "sqlite":
                for statement in _split_statements(migration.sql):
                    conn.execute(statement)
            else:
                conn.execute(migration.sql)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, sha256, applied_at)"
                " VALUES (?, ?, ?, ?)",
                (
                    migration.version,
                    migration.name,
                    migration.sha256,
                    utc_now_iso(),
                ),
            )
        applied_now.append(migration.version)
        log.info(
            "migration applied",
            extra={"version": migration.version, "migration": migration.name},
        )
    return applied_now


def pending(db: Database, migrations: list[Migration] | None = None) -> list[int]:
    """Versions not yet applied; raises MigrationError when the database is newer."""
    migrations = load_migrations(dialect=db.dialect) if migrations is None else migrations
    with db.read() as conn:
        applied = _applied(db, conn)
    _check_applied(applied, migrations)
    return [m.version for m in migrations if m.version not in applied]
