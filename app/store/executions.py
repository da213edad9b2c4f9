"""SQL for ``executions``, the durable queue of work."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from app.errors import NotFound
from app.store import paging
from app.store.base import Connection, Database

ACTIVE_STATUSES = ("queued", "running")
FINAL_STATUSES = ("succeeded", "failed", "timed_out", "cancelled", "interrupted")
STATUSES = ACTIVE_STATUSES + FINAL_STATUSES

_SUMMARY = (
    "id, trigger, delivery_id, request_id, status, attempt, retry_of, rerun_of, created_at,"
    " run_after, started_at, finished_at, exit_code, error, output_bytes"
)


QUEUED_COLUMNS = (
    "id, trigger, delivery_id, request_id, status, attempt, retry_of, rerun_of, created_at,"
    " run_after, report, status_changed_at"
)


def queued_values(
    *,
    execution_id: str,
    trigger: str,
    delivery_id: str | None,
    request_id: str | None,
    created_at: str,
    report: dict[str, Any],
    attempt: int = 1,
    retry_of: str | None = None,
    rerun_of: str | None = None,
    run_after: str | None = None,
) -> tuple[Any, ...]:
    """A queued execution's values in the order of :data:`QUEUED_COLUMNS`."""
    return (
        execution_id,
        trigger,
        delivery_id,
        request_id,
        "queued",
        attempt,
        retry_of,
        rerun_of,
        created_at,
        run_after,
        json.dumps(report),
        created_at,
    )


_INSERT_QUEUED = (
    f"INSERT INTO executions ({QUEUED_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def insert_queued(
    conn: Connection,
    *,
    execution_id: str,
    trigger: str,
    delivery_id: str | None,
    request_id: str | None,
    created_at: str,
    report: dict[str, Any],
    attempt: int = 1,
    retry_of: str | None = None,
    rerun_of: str | None = None,
    run_after: str | None = None,
) -> None:
    """Queue an execution inside the caller's write transaction."""
    conn.execute(
        _INSERT_QUEUED,
        queued_values(
            execution_id=execution_id,
            trigger=trigger,
            delivery_id=delivery_id,
            request_id=request_id,
            created_at=created_at,
            report=report,
            attempt=attempt,
            retry_of=retry_of,
            rerun_of=rerun_of,
            run_after=run_after,
        ),
    )


@dataclass(frozen=True)
class ExecutionRow:
    """One execution as stored, its processing report decoded."""

    id: str
    trigger: str
    delivery_id: str | None
    request_id: str | None
    status: str
    attempt: int
    retry_of: str | None
    rerun_of: str | None
    created_at: str
    run_after: str | None
    started_at: str | None
    finished_at: str | None
    exit_code: int | None
    error: str | None
    output_bytes: int
    owner: str | None = None
    heartbeat_at: str | None = None
    report: dict[str, Any] = field(default_factory=dict)
    claim_token: str | None = None  # internal: never part of the API view

    @classmethod
    def from_row(cls, row: Any) -> ExecutionRow:
        values = dict(row)
        values["report"] = json.loads(values.get("report") or "{}")
        return cls(**values)

    def api_view(self) -> dict[str, Any]:
        """The admin API's JSON of this execution."""
        view = asdict(self)
        del view["claim_token"]
        return view


# Every column of an ExecutionRow, in its order (claims return them too).
FULL_COLUMNS = f"{_SUMMARY}, owner, heartbeat_at, report, claim_token"


def get(db: Database, execution_id: str) -> ExecutionRow:
    """One execution; raises NotFound."""
    with db.read() as conn:
        row = conn.execute(
            f"SELECT {FULL_COLUMNS} FROM executions WHERE id = ?", (execution_id,)
        ).fetchone()
    if row is None:
        raise NotFound(f"No execution has the id {execution_id!r}.")
    return ExecutionRow.from_row(row)


def running(db: Database) -> list[ExecutionRow]:
    """Every running execution with its lease, for the reaper."""
    with db.read() as conn:
        sql = f"SELECT {FULL_COLUMNS} FROM executions WHERE status = 'running'"
        rows = conn.execute(sql).fetchall()
    return [ExecutionRow.from_row(row) for row in rows]


def list_recent(
    db: Database,
    *,
    trigger: str | None,
    status: str | None,
    since: str | None,
    until: str | None,
    after: tuple[str, str] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Summaries, newest first."""
    return paging.recent(
        db,
        table="executions",
        columns=_SUMMARY,
        time_column="created_at",
        equals={"trigger": trigger, "status": status},
        since=since,
        until=until,
        after=after,
        limit=limit,
    )


def follow_ups(db: Database, execution_id: str, limit: int = 50) -> list[dict[str, Any]]:
    """Summaries of the retries and reruns of one execution, oldest first."""
    with db.read() as conn:
        rows = conn.execute(
            f"SELECT {_SUMMARY} FROM executions WHERE retry_of = ? OR rerun_of = ?"
            " ORDER BY created_at, id LIMIT ?",
            (execution_id, execution_id, limit),
        ).fetchall()
    return [dict(row) for row in rows]
