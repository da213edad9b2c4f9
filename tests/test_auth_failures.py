"""401s are not stored but counted in /metrics and logged, with a bounded line budget."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from app.ingest import auth_failures
from app.store import Database
from tests.conftest import GITHUB_SECRET, github_headers, trigger_document
from tests.server import gunicorn_server

BODY = json.dumps({"after": "abc"}).encode()


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _failures(text: str, trigger: str, reason: str) -> float:
    key = ("hookrunner_auth_failures_total", (("reason", reason), ("trigger", trigger)))
    return _samples(text).get(key, 0.0)


def _count(db: Database, table: str) -> int:
    with db.read() as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def test_auth_failures_are_counted_by_reason_and_not_stored(
    client: FlaskClient, db: Database, make_trigger: Any
) -> None:
    make_trigger("counted")
    before = client.get("/metrics").get_data(as_text=True)
    bad = github_headers(BODY, "c-1", secret="wrong")
    missing = {k: v for k, v in github_headers(BODY, "c-2").items() if k != "X-Hub-Signature-256"}
    for headers in (bad, bad, missing):
        assert client.post("/webhooks/counted", data=BODY, headers=headers).status_code == 401
    after = client.get("/metrics").get_data(as_text=True)
    assert (
        _failures(after, "counted", "signature_invalid")
        - _failures(before, "counted", "signature_invalid")
        == 2
    )
    assert (
        _failures(after, "counted", "signature_missing")
        - _failures(before, "counted", "signature_missing")
        == 1
    )
    assert _count(db, "deliveries") == 0


def test_each_failure_logs_one_warning_without_secrets(
    client: FlaskClient,
    make_trigger: Any,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(auth_failures, "_budget", auth_failures.LineBudget(20, 60.0))
    make_trigger("logged")
    headers = {**github_headers(BODY, "l-1", secret="wrong"), "X-Request-ID": "req-auth-1"}
    with caplog.at_level(logging.WARNING, logger="app.ingest.auth_failures"):
        client.post("/webhooks/logged", data=BODY, headers=headers)
    lines = [r for r in caplog.records if r.name == "app.ingest.auth_failures"]
    assert len(lines) == 1
    line = lines[0]
    assert line.levelno == logging.WARNING
    assert (line.trigger, line.reason, line.request_id) == (  # type: ignore[attr-defined]
        "logged",
        "signature_invalid",
        "req-auth-1",
    )
    rendered = json.dumps(vars(line), default=str)
    assert headers["X-Hub-Signature-256"].removeprefix("sha256=") not in rendered
    assert GITHUB_SECRET not in rendered


def test_a_flood_of_failures_logs_a_bounded_number_of_lines(
    client: FlaskClient,
    make_trigger: Any,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(auth_failures, "_budget", auth_failures.LineBudget(5, 3600.0))
    make_trigger("flooded")
    bad = github_headers(BODY, "f-1", secret="wrong")
    with caplog.at_level(logging.WARNING, logger="app.ingest.auth_failures"):
        for _ in range(40):
            assert client.post("/webhooks/flooded", data=BODY, headers=bad).status_code == 401
    lines = [r for r in caplog.records if r.name == "app.ingest.auth_failures"]
    assert len(lines) == 5


def test_line_budget_refills_per_window_and_reports_what_it_dropped() -> None:
    now = [0.0]
    budget = auth_failures.LineBudget(2, 10.0, clock=lambda: now[0])
    assert [budget.take() for _ in range(5)] == [0, 0, None, None, None]
    now[0] = 10.0
    assert budget.take() == 3  # the first line of the next window says 3 were dropped
    assert budget.take() == 0
    assert budget.take() is None


def test_gauges_have_a_series_for_every_trigger_and_destination(
    client: FlaskClient, make_trigger: Any
) -> None:
    make_trigger("idle")
    make_trigger("forward", action={"type": "http", "url": "https://hooks.example.com/x"})
    samples = _samples(client.get("/metrics").get_data(as_text=True))
    for trigger in ("idle", "forward"):
        assert samples[("hookrunner_queue_depth", (("trigger", trigger),))] == 0
        assert samples[("hookrunner_oldest_queued_age_seconds", (("trigger", trigger),))] == 0
        for status in ("queued", "running"):
            key = ("hookrunner_executions_active", (("status", status), ("trigger", trigger)))
            assert samples[key] == 0
    destination = "https://hooks.example.com:443"
    states = {
        state: samples[
            ("hookrunner_breaker_state", (("destination", destination), ("state", state)))
        ]
        for state in ("closed", "open", "half-open")
    }
    assert states == {"closed": 1.0, "open": 0.0, "half-open": 0.0}


@pytest.mark.slow
def test_counts_are_summed_over_gunicorn_workers(tmp_path: Path) -> None:
    token = "auth-metrics-token-0123456789abcdef"
    auth = {"Authorization": f"Bearer {token}"}
    env = {"ADMIN_TOKEN": token, "ENGINE_ENABLED": "0"}
    with gunicorn_server(tmp_path, env=env, workers=2) as server:
        created = requests.post(
            f"{server.base_url}/admin/triggers",
            json=trigger_document("multi"),
            headers=auth,
            timeout=10,
        )
        assert created.status_code == 201
        bad = github_headers(BODY, "m-1", secret="wrong")
        sent = 30
        for _ in range(sent):  # a new connection each: both workers take some
            with requests.Session() as session:
                response = session.post(
                    f"{server.base_url}/webhooks/multi", data=BODY, headers=bad, timeout=10
                )
                assert response.status_code == 401
        scrapes = []
        for _ in range(8):
            with requests.Session() as session:
                text = session.get(f"{server.base_url}/metrics", timeout=10).text
            scrapes.append(_failures(text, "multi", "signature_invalid"))
        assert scrapes == [sent] * len(scrapes)
        assert "pid=" not in text
        warnings = [
            json.loads(line)
            for line in server.log_lines()
            if "webhook authentication failed" in line
        ]
    assert 0 < len(warnings) <= 2 * auth_failures.LOG_LINES_PER_WINDOW
    line = warnings[0]
    assert (line["level"], line["trigger"], line["reason"]) == (
        "WARNING",
        "multi",
        "signature_invalid",
    )
    assert line["request_id"]
    assert bad["X-Hub-Signature-256"].removeprefix("sha256=") not in json.dumps(warnings)
