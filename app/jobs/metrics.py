"""Metrics computed from the store, so several workers report the same figures.

:class:`StoreCollector` is a prometheus-client collector: each scrape of
``/metrics`` reads rollups plus the raw rows after the last rolled-up day.
:func:`rollup` is the daily job that fills ``metrics_daily``; :func:`summary`
is the JSON of ``GET /admin/metrics/summary``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from app.clock import parse_iso, utc_now, utc_now_iso
from app.outbound.breakers import destination_of
from app.store import Database, breaker_states
from app.store import metrics as metrics_sql
from app.store import triggers as triggers_sql

BREAKER_STATES = ("closed", "open", "half-open")


def _totals(
    db: Database,
) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], dict[str, Any]]]:
    """Deliveries by (trigger, outcome) and executions by (trigger, status), all time."""
    deliveries: dict[tuple[str, str], int] = defaultdict(int)
    executions: dict[tuple[str, str], dict[str, Any]] = {}

    width = len(metrics_sql.DURATION_BUCKETS)

    def add_execution(key: tuple[str, str], count: int, total: float, buckets: list[int]) -> None:
        buckets = buckets or [0] * width
        entry = executions.setdefault(key, {"count": 0, "sum": 0.0, "buckets": [0] * width})
        entry["count"] += count
        entry["sum"] += total
        entry["buckets"] = [a + b for a, b in zip(entry["buckets"], buckets, strict=True)]

    for row in metrics_sql.rollups(db):
        key = (row["trigger"], row["key"])
        if row["kind"] == "delivery":
            deliveries[key] += row["count"]
        elif row["kind"] == "execution":
            add_execution(key, row["count"], row["duration_sum"] or 0.0, row["buckets"] or [])
    since = metrics_sql.raw_since(metrics_sql.last_rolled_day(db))
    for trigger, outcome, count in metrics_sql.delivery_counts(db, since):
        deliveries[(trigger, outcome)] += count
    for stat in metrics_sql.execution_stats(db, since):
        add_execution(
            (stat["trigger"], stat["status"]), stat["count"], stat["duration_sum"], stat["buckets"]
        )
    return dict(deliveries), executions


def _known(db: Database) -> tuple[list[str], set[str]]:
    """Every trigger name and every HTTP action's destination (for zero-valued gauges)."""
    names, destinations = [], set()
    for row in triggers_sql.list_all(db):
        names.append(row.name)
        action = json.loads(row.document).get("action") or {}
        if action.get("type") == "http" and action.get("url"):
            destinations.add(destination_of(action["url"]))
    return names, destinations


class StoreCollector(Collector):
    """Store-wide figures. Gauges have a series for every trigger and every HTTP
    destination, zero (or ``closed``) when nothing is queued or recorded."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        deliveries, executions = _totals(self.db)
        triggers, destinations = _known(self.db)
        yield from _delivery_families(deliveries)
        yield from _execution_families(executions)
        yield from _queue_families(self.db, triggers)
        breakers = GaugeMetricFamily(
            "hookrunner_breaker_state",
            "Circuit breaker state per destination (1 for the current state).",
            labels=["destination", "state"],
        )
        states = dict.fromkeys(destinations, "closed") | breaker_states.all_states(self.db)
        for destination, current in sorted(states.items()):
            for state in BREAKER_STATES:
                breakers.add_metric([destination, state], 1.0 if state == current else 0.0)
        yield breakers


def _delivery_families(deliveries: dict[tuple[str, str], int]) -> Iterator[Metric]:
    total = CounterMetricFamily(
        "hookrunner_deliveries",
        "Authenticated deliveries by outcome.",
        labels=["trigger", "outcome"],
    )
    hits = CounterMetricFamily(
        "hookrunner_dedup_hits", "Deliveries answered as duplicates.", labels=["trigger"]
    )
    for (trigger, outcome), count in sorted(deliveries.items()):
        total.add_metric([trigger, outcome], count)
        if outcome == "duplicate":
            hits.add_metric([trigger], count)
    return iter((total, hits))


def _execution_families(executions: dict[tuple[str, str], dict[str, Any]]) -> Iterator[Metric]:
    total = CounterMetricFamily(
        "hookrunner_executions", "Finished executions by status.", labels=["trigger", "status"]
    )
    per_trigger: dict[str, dict[str, Any]] = {}
    for (trigger, status), entry in sorted(executions.items()):
        total.add_metric([trigger, status], entry["count"])
        merged = per_trigger.setdefault(
            trigger, {"sum": 0.0, "buckets": [0] * len(entry["buckets"])}
        )
        merged["sum"] += entry["sum"]
        merged["buckets"] = [
            a + b for a, b in zip(merged["buckets"], entry["buckets"], strict=True)
        ]
        merged["count"] = merged.get("count", 0) + entry["count"]
    histogram = HistogramMetricFamily(
        "hookrunner_execution_duration_seconds",
        "How long finished executions ran.",
        labels=["trigger"],
    )
    for trigger, merged in per_trigger.items():
        bounds = [str(b) for b in metrics_sql.DURATION_BUCKETS]
        buckets = [*zip(bounds, merged["buckets"], strict=True), ("+Inf", merged["count"])]
        histogram.add_metric([trigger], buckets, sum_value=merged["sum"])
    return iter((total, histogram))


def _queue_families(db: Database, triggers: list[str]) -> Iterator[Metric]:
    active = GaugeMetricFamily(
        "hookrunner_executions_active",
        "Queued and running executions.",
        labels=["trigger", "status"],
    )
    depth = GaugeMetricFamily("hookrunner_queue_depth", "Queued executions.", labels=["trigger"])
    oldest = GaugeMetricFamily(
        "hookrunner_oldest_queued_age_seconds",
        "Age of the oldest queued execution (0 with an empty queue).",
        labels=["trigger"],
    )
    now = utc_now()
    counts: dict[tuple[str, str], int] = {}
    ages: dict[str, float] = {}
    for trigger, status, count, first in metrics_sql.active(db):
        counts[(trigger, status)] = count
        if status == "queued" and first:
            ages[trigger] = (now - parse_iso(first)).total_seconds()
    names = sorted(set(triggers) | {trigger for trigger, _status in counts})
    for trigger in names:
        for status in ("queued", "running"):
            active.add_metric([trigger, status], counts.get((trigger, status), 0))
        depth.add_metric([trigger], counts.get((trigger, "queued"), 0))
        oldest.add_metric([trigger], ages.get(trigger, 0.0))
    return iter((active, depth, oldest))


# --- the daily rollup job -------------------------------------------------------------


def rollup(db: Database) -> list[str]:
    """Roll up every finished UTC day not rolled up yet; returns the days written."""
    yesterday = (utc_now().date() - timedelta(days=1)).isoformat()
    last = metrics_sql.last_rolled_day(db)
    start = metrics_sql.raw_since(last) if last else metrics_sql.first_raw_day(db)
    if not start:
        return []
    written = []
    day = date.fromisoformat(start[:10])
    while day.isoformat() <= yesterday:
        _rollup_day(db, day)
        written.append(day.isoformat())
        day += timedelta(days=1)
    return written


def _rollup_day(db: Database, day: date) -> None:
    since, until = day.isoformat(), (day + timedelta(days=1)).isoformat()
    rows: list[dict[str, Any]] = [
        {"trigger": trigger, "kind": "delivery", "key": outcome, "count": count}
        for trigger, outcome, count in metrics_sql.delivery_counts(db, since, until)
    ]
    stats = metrics_sql.execution_stats(db, since, until)
    with db.write() as conn:
        p95 = {
            s["trigger"]: metrics_sql.duration_p95(conn, s["trigger"], since, until) for s in stats
        }
        rows += [
            {
                "trigger": s["trigger"],
                "kind": "execution",
                "key": s["status"],
                "count": s["count"],
                "duration_sum": s["duration_sum"],
                "duration_min": s["duration_min"],
                "duration_max": s["duration_max"],
                "duration_p95": p95[s["trigger"]],
                "buckets": s["buckets"],
            }
            for s in stats
        ]
        metrics_sql.upsert_day(conn, day.isoformat(), rows)


# --- the JSON summary -----------------------------------------------------------------


def _window(db: Database, seconds: float) -> dict[str, Any]:
    since = utc_now_iso(-seconds)
    deliveries: dict[str, int] = defaultdict(int)
    for _trigger, outcome, count in metrics_sql.delivery_counts(db, since):
        deliveries[outcome] += count
    executions: dict[str, int] = defaultdict(int)
    duration_sum, timed = 0.0, 0
    for stat in metrics_sql.execution_stats(db, since):
        executions[stat["status"]] += stat["count"]
        duration_sum += stat["duration_sum"]
        timed += stat["timed"]
    return {
        "since": since,
        "deliveries": dict(deliveries),
        "executions": dict(executions),
        "duration_avg_seconds": round(duration_sum / timed, 3) if timed else None,
    }


def summary(db: Database, history_days: int = 30) -> dict[str, Any]:
    """Last hour, last day, the current queue, breakers and the daily history."""
    queue: dict[str, dict[str, int]] = defaultdict(dict)
    for trigger, status, count, _first in metrics_sql.active(db):
        queue[trigger][status] = count
    since_day = (utc_now().date() - timedelta(days=history_days)).isoformat()
    return {
        "last_hour": _window(db, 3600),
        "last_day": _window(db, 86400),
        "active": dict(queue),
        "breakers": breaker_states.all_states(db),
        "daily": metrics_sql.rollups(db, since_day),
    }
