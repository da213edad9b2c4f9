"""Storage: the store seam (:mod:`app.store.base`), its SQLite and PostgreSQL
implementations, migrations, and one module of SQL per table.

:func:`open_store` picks the implementation from ``DATABASE_URL``; the rest of
Hookrunner sees only :class:`Database`.
"""

from __future__ import annotations

from flask import Flask, current_app

from app.config import Settings
from app.store.base import Connection, Database, IntegrityError
from app.store.sqlite.database import SQLiteDatabase

_EXTENSION = "hookrunner.db"

__all__ = [
    "Connection",
    "Database",
    "IntegrityError",
    "SQLiteDatabase",
    "get_db",
    "init_app",
    "open_store",
]


def open_store(settings: Settings) -> Database:
    """The store ``settings.database_url`` names (nothing is connected yet)."""
    if settings.database_dialect == "postgresql":
        from app.store.postgres.database import PostgresDatabase

        return PostgresDatabase(
            settings.database_url,
            pool_size=settings.database_pool_size,
            connect_timeout=settings.database_connect_timeout_seconds,
        )
    return SQLiteDatabase(
        settings.sqlite_path,
        synchronous=settings.sqlite_synchronous,
        busy_timeout_ms=settings.sqlite_busy_timeout_ms,
    )


def get_db() -> Database:
    """The current app's store."""
    db: Database = current_app.extensions[_EXTENSION]
    return db


def init_app(app: Flask, db: Database) -> None:
    app.extensions[_EXTENSION] = db
