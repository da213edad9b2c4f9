"""SQL behind /metrics and the daily rollups: counts read from the store.

Totals are "rollups for every rolled-up day + raw rows after the last one", so
they keep growing after retention prunes raw rows, and every worker reports
the same number. A day is rolled up once (a ``marker`` row records it); later
runs skip it, which makes the job idempotent and safe after pruning.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from app.clock import utc_now_iso
from app.store.base import Connection, Database
from app.store.executions import FINAL_STATUSES

# Histogram bounds for execution durations, in seconds.
DURATION_BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0)
_FINAL = "(" + ", ".join(f"'{status}'" for status in FINAL_STATUSES) + ")"
_BUCKET_SQL = ", ".join(
    f"SUM(CASE WHEN duration_ms <= {bound * 1000} THEN 1 ELSE 0 END)" for bound in DURATION_BUCKETS
)


def last_rolled_day(db: Database) -> str | None:
    with db.read() as conn:
        row = conn.execute("SELECT MAX(day) FROM metrics_daily WHERE kind = 'marker'").fetchone()
    return None if row[0] is None else str(row[0])


def raw_since(last_day: str | None) -> str:
    """Stored-timestamp lower bound of the rows not yet rolled up."""
    if last_day is None:
        return ""
    return (date.fromisoformat(last_day) + timedelta(days=1)).isoformat()


def delivery_counts(
    db: Database, since: str, until: str | None = None
) -> list[tuple[str, str, int]]:
    """(trigger, outcome, count) of deliveries received in [since, until)."""
    with db.read() as conn:
        rows = conn.execute(
            "SELECT trigger, outcome, COUNT(*) FROM deliveries"
            " WHERE received_at >= ? AND (CAST(? AS TEXT) IS NULL OR received_at < ?)"
            " GROUP BY trigger, outcome",
            (since, until, until),
        ).fetchall()
    return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]


def execution_stats(db: Database, since: str, until: str | None = None) -> list[dict[str, Any]]:
    """Per (trigger, status) of executions finished in [since, until): count, durations, buckets."""
    with db.read() as conn:
        rows = conn.execute(
            "SELECT trigger, status, COUNT(*), SUM(duration_ms), MIN(duration_ms),"
            f" MAX(duration_ms), COUNT(duration_ms), {_BUCKET_SQL} FROM executions"
            f" WHERE status IN {_FINAL} AND status_changed_at >= ?"
            " AND (CAST(? AS TEXT) IS NULL OR status_changed_at < ?)"
            " GROUP BY trigger, status",
            (since, until, until),
        ).fetchall()
    return [
        {
            "trigger": str(r[0]),
            "status": str(r[1]),
            "count": int(r[2]),
            "duration_sum": (r[3] or 0.0) / 1000,
            "duration_min": None if r[4] is None else r[4] / 1000,
            "duration_max": None if r[5] is None else r[5] / 1000,
            "timed": int(r[6]),
            "buckets": [int(v or 0) for v in r[7:]],
        }
        for r in rows
    ]


def duration_p95(conn: Connection, trigger: str, since: str, until: str) -> float | None:
    row = conn.execute(
        "SELECT COUNT(duration_ms) FROM executions WHERE trigger = ? AND status_changed_at >= ?"
        f" AND status_changed_at < ? AND status IN {_FINAL}",
        (trigger, since, until),
    ).fetchone()
    count = int(row[0])
    if count == 0:
        return None
    offset = min(count - 1, int(count * 0.95))
    value = conn.execute(
        "SELECT duration_ms FROM executions WHERE trigger = ? AND status_changed_at >= ?"
        f" AND status_changed_at < ? AND status IN {_FINAL} AND duration_ms IS NOT NULL"
        " ORDER BY duration_ms LIMIT 1 OFFSET ?",
        (trigger, since, until, offset),
    ).fetchone()
    return None if value is None else float(value[0]) / 1000


def active(db: Database) -> list[tuple[str, str, int, str | None]]:
    """(trigger, status, count, oldest created_at) of queued and running executions."""
    with db.read() as conn:
        rows = conn.execute(
            "SELECT trigger, status, COUNT(*), MIN(created_at) FROM executions"
            " WHERE status IN ('queued', 'running') GROUP BY trigger, status"
        ).fetchall()
    return [(str(r[0]), str(r[1]), int(r[2]), r[3]) for r in rows]


def rollups(db: Database, since_day: str | None = None) -> list[dict[str, Any]]:
    with db.read() as conn:
        rows = conn.execute(
            "SELECT day, trigger, kind, key, count, duration_sum, duration_min, duration_max,"
            " duration_p95, buckets FROM metrics_daily WHERE kind != 'marker' AND day >= ?"
            " ORDER BY day, trigger, kind, key",
            (since_day or "",),
        ).fetchall()
    result = []
    for row in rows:
        item = dict(row)
        item["buckets"] = json.loads(item["buckets"]) if item["buckets"] else None
        result.append(item)
    return result


def upsert_day(conn: Connection, day: str, rows: list[dict[str, Any]]) -> None:
    """Write one day's rollup rows and its marker inside the caller's transaction."""
    now = utc_now_iso()
    for row in [*rows, {"trigger": "", "kind": "marker", "key": "", "count": 0}]:
        buckets = row.get("buckets")
        conn.execute(
            "INSERT INTO metrics_daily (day, trigger, kind, key, count, duration_sum,"
            " duration_min, duration_max, duration_p95, buckets, rolled_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (day, trigger, kind, key) DO UPDATE SET count = excluded.count,"
            " duration_sum = excluded.duration_sum, duration_min = excluded.duration_min,"
            " duration_max = excluded.duration_max, duration_p95 = excluded.duration_p95,"
            " buckets = excluded.buckets, rolled_at = excluded.rolled_at",
            (
                day,
                row["trigger"],
                row["kind"],
                row["key"],
                row["count"],
                row.get("duration_sum"),
                row.get("duration_min"),
                row.get("duration_max"),
                row.get("duration_p95"),
                None if buckets is None else json.dumps(buckets),
                now,
            ),
        )


def first_raw_day(db: Database) -> str | None:
    with db.read() as conn:
        row = conn.execute(
            "SELECT MIN(day) FROM (SELECT MIN(received_at) AS day FROM deliveries"
            " UNION ALL SELECT MIN(status_changed_at) FROM executions) AS firsts"
        ).fetchone()
    return None if row[0] is None else str(row[0])[:10]
