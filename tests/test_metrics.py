"""/metrics and /admin/metrics/summary read the store; rollups and retention keep history."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from app.clock import utc_now_iso
from app.jobs import metrics, retention
from app.store import Database, breaker_states
from app.wiring import registry_of
from tests.conftest import github_headers

PUSH = json.dumps({"ref": "refs/heads/main"}).encode()


def _samples(client: FlaskClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _finish(db: Database, execution_id: str, status: str, duration_ms: float, when: str) -> None:
    with db.write() as conn:
        conn.execute(
            "UPDATE executions SET status = ?, started_at = ?, finished_at = ?,"
            " status_changed_at = ?, duration_ms = ? WHERE id = ?",
            (status, when, when, when, duration_ms, execution_id),
        )


def _age_everything(db: Database, iso: str) -> None:
    with db.write() as conn:
        conn.execute("UPDATE deliveries SET received_at = ?", (iso,))
        conn.execute(
            "UPDATE executions SET created_at = ?, finished_at = ?, status_changed_at = ?",
            (iso, iso, iso),
        )


def _traffic(client: FlaskClient, db: Database) -> str:
    accepted = client.post("/webhooks/deploy", data=PUSH, headers=github_headers(PUSH, "m-1"))
    client.post("/webhooks/deploy", data=PUSH, headers=github_headers(PUSH, "m-1"))
    execution_id = accepted.get_json()["execution_id"]
    _finish(db, execution_id, "succeeded", 1500.0, utc_now_iso())
    return str(execution_id)


def test_metrics_count_deliveries_executions_and_durations(
    client: FlaskClient, db: Database, make_trigger: Any
) -> None:
    make_trigger()
    _traffic(client, db)
    client.post("/webhooks/deploy", data=PUSH, headers=github_headers(PUSH, "m-2"))  # queued
    samples = _samples(client)
    trigger = ("trigger", "deploy")
    assert samples[("hookrunner_deliveries_total", (("outcome", "accepted"), trigger))] == 2
    assert samples[("hookrunner_deliveries_total", (("outcome", "duplicate"), trigger))] == 1
    assert samples[("hookrunner_dedup_hits_total", (trigger,))] == 1
    assert samples[("hookrunner_executions_total", (("status", "succeeded"), trigger))] == 1
    assert samples[("hookrunner_execution_duration_seconds_bucket", (("le", "1.0"), trigger))] == 0
    assert samples[("hookrunner_execution_duration_seconds_bucket", (("le", "5.0"), trigger))] == 1
    assert samples[("hookrunner_execution_duration_seconds_sum", (trigger,))] == 1.5
    assert samples[("hookrunner_queue_depth", (trigger,))] == 1
    assert samples[("hookrunner_oldest_queued_age_seconds", (trigger,))] >= 0


def test_metrics_are_the_same_from_every_worker(
    make_app: Any, make_trigger: Any, client: FlaskClient, db: Database
) -> None:
    make_trigger()
    _traffic(client, db)
    other_worker = make_app().test_client()
    assert _samples(other_worker) == _samples(client)


def test_breaker_states_come_from_the_store(client: FlaskClient, db: Database) -> None:
    breaker_states.record(db, "https://api.example.com:443", "open", "worker-1")
    samples = _samples(client)
    label = ("destination", "https://api.example.com:443")
    assert samples[("hookrunner_breaker_state", (label, ("state", "open")))] == 1
    assert samples[("hookrunner_breaker_state", (label, ("state", "closed")))] == 0


def test_rollup_is_idempotent_and_totals_survive_retention(
    app: Flask, client: FlaskClient, db: Database, make_trigger: Any
) -> None:
    make_trigger(retention_days=1)
    _traffic(client, db)
    _age_everything(db, utc_now_iso(-3 * 86400))
    before = _samples(client)

    written = metrics.rollup(db)
    assert written  # the three-days-old day (and the empty days after it) are rolled up
    assert metrics.rollup(db) == []  # re-running changes nothing
    assert _samples(client) == before

    pruned = retention.prune(db, registry_of(app))
    assert pruned == {"deploy": (1, 2)}
    with db.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0] == 0
    # Raw rows are gone; the totals are not.
    assert _samples(client) == before


def test_retention_keeps_what_is_not_rolled_up_or_still_active(
    app: Flask, client: FlaskClient, db: Database, make_trigger: Any
) -> None:
    make_trigger(retention_days=1)
    _traffic(client, db)
    _age_everything(db, utc_now_iso(-3 * 86400))
    assert retention.prune(db, registry_of(app)) == {}  # no rollup yet: nothing pruned
    with db.write() as conn:
        conn.execute("UPDATE executions SET status = 'queued'")
    metrics.rollup(db)
    assert retention.prune(db, registry_of(app)) == {"deploy": (0, 2)}
    with db.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM executions").fetchone()[0] == 1


def test_summary_has_windows_queue_breakers_and_history(
    client: FlaskClient, db: Database, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    make_trigger()
    _traffic(client, db)
    _age_everything(db, utc_now_iso(-2 * 86400))
    metrics.rollup(db)
    _traffic_again = client.post("/webhooks/deploy", data=PUSH, headers=github_headers(PUSH, "s-1"))
    assert _traffic_again.status_code == 202
    body = client.get("/admin/metrics/summary", headers=auth_headers).get_json()
    assert body["last_hour"]["deliveries"] == {"accepted": 1}
    assert body["active"] == {"deploy": {"queued": 1}}
    kinds = {(row["kind"], row["key"]): row["count"] for row in body["daily"]}
    assert kinds[("delivery", "accepted")] == 1
    assert kinds[("delivery", "duplicate")] == 1
    assert kinds[("execution", "succeeded")] == 1
    assert client.get("/admin/metrics/summary").status_code == 401
