"""SQL for ``deliveries``: one row per authenticated webhook, whatever became of it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from app.errors import NotFound
from app.store import paging
from app.store.base import Connection, Database


@dataclass(frozen=True)
class DeliveryRecord:
    id: str
    trigger: str
    received_at: str
    request_id: str | None
    outcome: str  # accepted | duplicate | ignored | rejected
    reason: str | None
    dedup_key: str | None
    execution_id: str | None
    replay_of: str | None
    method: str
    content_type: str | None
    query: dict[str, Any]
    headers: dict[str, str]  # credentials already redacted
    body: bytes
    report: dict[str, Any]
    # The redacted values, kept only for triggers whose action templates read headers or
    # the query ({"headers": {...}, "query": {...}}); never part of an API view.
    credentials: dict[str, dict[str, Any]] | None = None

    def api_view(self) -> dict[str, Any]:
        view = asdict(self)
        del view["credentials"]
        return view


COLUMNS = (
    "id, trigger, received_at, request_id, outcome, reason, dedup_key, execution_id, replay_of,"
    " method, content_type, query, headers, body, body_size, report, credentials"
)
_INSERT = f"INSERT INTO deliveries ({COLUMNS}) VALUES ({', '.join('?' * 17)})"
_SUMMARY = (
    "id, trigger, received_at, request_id, outcome, reason, dedup_key, execution_id,"
    " replay_of, method, content_type, body_size"
)


def values(record: DeliveryRecord) -> tuple[Any, ...]:
    """The row's values in the order of :data:`COLUMNS`."""
    return (
        record.id,
        record.trigger,
        record.received_at,
        record.request_id,
        record.outcome,
        record.reason,
        record.dedup_key,
        record.execution_id,
        record.replay_of,
        record.method,
        record.content_type,
        json.dumps(record.query),
        json.dumps(record.headers),
        record.body,
        len(record.body),
        json.dumps(record.report),
        None if record.credentials is None else json.dumps(record.credentials),
    )


def insert(conn: Connection, record: DeliveryRecord) -> None:
    """Insert inside the caller's write transaction."""
    conn.execute(_INSERT, values(record))


# Every column a DeliveryRecord is built from (``record_from`` decodes them).
RECORD_COLUMNS = f"{_SUMMARY}, query, headers, body, report, credentials"


def record_from(item: dict[str, Any]) -> DeliveryRecord:
    """A DeliveryRecord from the raw values of :data:`RECORD_COLUMNS` (``item`` is consumed)."""
    del item["body_size"]
    for column in ("query", "headers", "report"):
        item[column] = json.loads(item[column])
    item["credentials"] = json.loads(item["credentials"]) if item["credentials"] else None
    item["body"] = bytes(item["body"])
    return DeliveryRecord(**item)


def get(db: Database, delivery_id: str) -> DeliveryRecord:
    """The whole delivery (body as bytes, JSON columns decoded); raises NotFound."""
    with db.read() as conn:
        row = conn.execute(
            f"SELECT {RECORD_COLUMNS} FROM deliveries WHERE id = ?", (delivery_id,)
        ).fetchone()
    if row is None:
        raise NotFound(f"No delivery has the id {delivery_id!r}.")
    return record_from(dict(row))


def list_recent(
    db: Database,
    *,
    trigger: str | None,
    outcome: str | None,
    since: str | None,
    until: str | None,
    after: tuple[str, str] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Summaries, newest first."""
    return paging.recent(
        db,
        table="deliveries",
        columns=_SUMMARY,
        time_column="received_at",
        equals={"trigger": trigger, "outcome": outcome},
        since=since,
        until=until,
        after=after,
        limit=limit,
    )


def report(db: Database, delivery_id: str) -> dict[str, Any]:
    """The ingest processing report of a delivery ({} when it is gone)."""
    with db.read() as conn:
        row = conn.execute("SELECT report FROM deliveries WHERE id = ?", (delivery_id,)).fetchone()
    return {} if row is None else dict(json.loads(row["report"]))


def replays_of(db: Database, delivery_id: str, limit: int = 50) -> list[dict[str, Any]]:
    """Summaries of the replays of one delivery, oldest first."""
    with db.read() as conn:
        rows = conn.execute(
            f"SELECT {_SUMMARY} FROM deliveries WHERE replay_of = ?"
            " ORDER BY received_at, id LIMIT ?",
            (delivery_id, limit),
        ).fetchall()
    return [dict(row) for row in rows]
