"""Storage: connections and transactions, migrations, one module of SQL per table."""

from app.store.sqlite.database import Database, get_db, init_app

__all__ = ["Database", "get_db", "init_app"]
