"""SQL for ``execution_logs``: output lines keyed by (execution_id, seq)."""

from __future__ import annotations

from typing import Any

from app.store.base import Database

LogRow = tuple[int, str, str, str]  # seq, ts, stream, line


def append(db: Database, execution_id: str, rows: list[LogRow], output_bytes: int) -> None:
    """Insert a batch of lines and record the running byte count, in one transaction."""
    with db.write() as conn:
        conn.executemany(
            "INSERT INTO execution_logs (execution_id, seq, ts, stream, line)"
            " VALUES (?, ?, ?, ?, ?)",
            [(execution_id, *row) for row in rows],
        )
        conn.execute(
            "UPDATE executions SET output_bytes = ? WHERE id = ?", (output_bytes, execution_id)
        )


def after(db: Database, execution_id: str, after_seq: int, limit: int) -> list[dict[str, Any]]:
    """Lines with ``seq > after_seq`` in order."""
    with db.read() as conn:
        rows = conn.execute(
            "SELECT seq, ts, stream, line FROM execution_logs"
            " WHERE execution_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (execution_id, after_seq, limit),
        ).fetchall()
    return [dict(row) for row in rows]


def tail(db: Database, execution_id: str, stream: str, count: int) -> list[str]:
    """The last ``count`` lines of one stream, oldest first."""
    with db.read() as conn:
        rows = conn.execute(
            "SELECT line FROM execution_logs WHERE execution_id = ? AND stream = ?"
            " ORDER BY seq DESC LIMIT ?",
            (execution_id, stream, count),
        ).fetchall()
    return [str(row["line"]) for row in reversed(rows)]


_OUTPUT_BATCH = 1000


def output_text(db: Database, execution_id: str, max_bytes: int) -> tuple[str, bool]:
    """The program's output (stdout and stderr lines in stored order, not Hookrunner's own
    ``system`` lines), each line ending in a newline, cut at ``max_bytes`` of UTF-8.

    Returns the text and whether it was cut. Each batch is one short read.
    """
    parts: list[bytes] = []
    size, after_seq = 0, 0
    while True:
        with db.read() as conn:
            rows = conn.execute(
                "SELECT seq, line FROM execution_logs WHERE execution_id = ? AND seq > ?"
                " AND stream <> 'system' ORDER BY seq LIMIT ?",
                (execution_id, after_seq, _OUTPUT_BATCH),
            ).fetchall()
        for row in rows:
            data = f"{row['line']}\n".encode("utf-8", "replace")
            if size + len(data) > max_bytes:
                parts.append(data[: max_bytes - size])
                text = b"".join(parts).decode("utf-8", errors="ignore")
                return text, True
            parts.append(data)
            size += len(data)
        if len(rows) < _OUTPUT_BATCH:
            return b"".join(parts).decode("utf-8", "replace"), False
        after_seq = int(rows[-1]["seq"])
