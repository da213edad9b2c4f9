"""Keyset pagination shared by the list queries: newest first, stable under inserts.

A page is ordered by ``(time_column DESC, id_column DESC)``; the next page
starts strictly after the last row's pair, so rows inserted meanwhile neither
repeat nor shift the page.
"""

from __future__ import annotations

from typing import Any

from app.store.base import Database

# (SQL condition with one "?", value); a None value means "no such filter".
Filter = tuple[str, Any]


def select_page(
    db: Database,
    *,
    table: str,
    columns: str,
    time_column: str,
    id_column: str = "id",
    filters: list[Filter],
    after: tuple[str, str] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """One page of rows as dicts. ``table``/``columns`` are code constants, never input."""
    clauses = [clause for clause, value in filters if value is not None]
    params = [value for _, value in filters if value is not None]
    if after is not None:
        clauses.append(f"({time_column} < ? OR ({time_column} = ? AND {id_column} < ?))")
        params += [after[0], after[0], after[1]]
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    with db.read() as conn:
        rows = conn.execute(
            f"SELECT {columns} FROM {table}{where}"
            f" ORDER BY {time_column} DESC, {id_column} DESC LIMIT ?",
            (*params, limit),
        ).fetchall()
    return [dict(row) for row in rows]


def recent(
    db: Database,
    *,
    table: str,
    columns: str,
    time_column: str,
    equals: dict[str, str | None],
    since: str | None,
    until: str | None,
    after: tuple[str, str] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """A page of ``table`` newest first, filtered by exact ``equals`` and ``[since, until)``."""
    filters: list[Filter] = [(f"{column} = ?", value) for column, value in equals.items()]
    filters += [(f"{time_column} >= ?", since), (f"{time_column} < ?", until)]
    return select_page(
        db,
        table=table,
        columns=columns,
        time_column=time_column,
        filters=filters,
        after=after,
        limit=limit,
    )
