"""Crash safety: leases, the reaper, durable retry schedules, graceful shutdown."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import pytest
from flask import Flask

from app.clock import utc_now_iso
from app.execution import leases
from app.store import Database, get_db
from app.wiring import components, engine_of
from tests.conftest import ENGINE_AUTH, wait_for

SLEEPER = {"type": "command", "argv": ["/bin/sh", "-c", "echo started; sleep 300"]}


def _create(app: Flask, name: str, action: dict[str, Any], **fields: Any) -> None:
    document = {
        "name": name,
        "auth": {"scheme": "none"},
        "dedup": {"key": "none"},
        "action": action,
    }
    response = app.test_client().post(
        "/admin/triggers", json={**document, **fields}, headers=ENGINE_AUTH
    )
    assert response.status_code == 201, response.get_json()


def _rows(db: Database, trigger: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        rows = conn.execute(
            "SELECT id, status, attempt, retry_of, run_after, owner, error FROM executions"
            " WHERE trigger = ? ORDER BY attempt",
            (trigger,),
        ).fetchall()
    return [dict(row) for row in rows]


def _dead_owner() -> str:
    process = subprocess.Popen(["/bin/true"])
    process.wait()
    return f"{leases.HOSTNAME}:{process.pid}:deadbeef"


def _force_running(db: Database, trigger: str, owner: str, heartbeat_at: str) -> None:
    with db.write() as conn:
        conn.execute(
            "UPDATE executions SET status = 'running', owner = ?, heartbeat_at = ?,"
            " started_at = ? WHERE trigger = ?",
            (owner, heartbeat_at, heartbeat_at, trigger),
        )


def _reap(app: Flask) -> int:
    with app.app_context():
        built = components(app)
        return leases.reap(
            get_db(), built.triggers, built.settings, built.notifier, "reaper-under-test"
        )


def test_execution_of_a_dead_worker_becomes_interrupted(make_app: Any) -> None:
    app = make_app(admin_token="engine-test-token-0123456789")  # engine off: nothing claims
    _create(app, "orphan", SLEEPER)
    app.test_client().post("/webhooks/orphan", json={})
    db = app.extensions["hookrunner.db"]
    _force_running(db, "orphan", _dead_owner(), utc_now_iso())
    assert _reap(app) == 1
    (row,) = _rows(db, "orphan")
    assert row["status"] == "interrupted"
    assert "stopped without finishing" in row["error"]


def test_expired_lease_is_reaped_and_retried_when_policy_allows(make_app: Any) -> None:
    app = make_app(admin_token="engine-test-token-0123456789")
    _create(app, "again", SLEEPER, retry={"max_attempts": 2, "backoff_seconds": 60})
    app.test_client().post("/webhooks/again", json={})
    db = app.extensions["hookrunner.db"]
    # A live-looking owner on another host whose heartbeat stopped long ago.
    _force_running(db, "again", "other-host:1:cafe", utc_now_iso(-3600))
    assert _reap(app) == 1
    first, retry = _rows(db, "again")
    assert first["status"] == "interrupted"
    assert retry["status"] == "queued"
    assert retry["attempt"] == 2
    assert retry["retry_of"] == first["id"]
    assert retry["run_after"] > utc_now_iso(25)


def test_live_lease_is_left_alone(make_app: Any) -> None:
    app = make_app(admin_token="engine-test-token-0123456789")
    _create(app, "busy", SLEEPER)
    app.test_client().post("/webhooks/busy", json={})
    db = app.extensions["hookrunner.db"]
    _force_running(db, "busy", "other-host:1:cafe", utc_now_iso())
    assert _reap(app) == 0
    assert _rows(db, "busy")[0]["status"] == "running"


def test_retry_schedule_survives_a_restart(make_app: Any) -> None:
    first_app = make_app(engine_enabled=True, admin_token="engine-test-token-0123456789")
    _create(
        first_app,
        "later",
        {"type": "command", "argv": ["/bin/sh", "-c", "exit 1"]},
        retry={"max_attempts": 2, "backoff_seconds": 3600, "max_backoff_seconds": 3600},
    )
    first_app.test_client().post("/webhooks/later", json={})
    db = first_app.extensions["hookrunner.db"]
    wait_for(lambda: len(_rows(db, "later")) == 2)
    engine = engine_of(first_app)
    assert engine is not None
    engine.shutdown(grace_seconds=5)  # the process "restarts"

    second_app = make_app(engine_enabled=True, admin_token="engine-test-token-0123456789")
    second_db = second_app.extensions["hookrunner.db"]
    failed, scheduled = _rows(second_db, "later")
    assert (failed["status"], scheduled["status"]) == ("failed", "queued")
    assert scheduled["run_after"] > utc_now_iso(1700)  # backoff 3600 s with jitter
    # When its time comes, the new process runs it.
    with second_db.write() as conn:
        conn.execute(
            "UPDATE executions SET run_after = ? WHERE id = ?", (utc_now_iso(-1), scheduled["id"])
        )
    engine_of(second_app).wake()  # type: ignore[union-attr]
    wait_for(lambda: _rows(second_db, "later")[1]["status"] == "failed")


def test_graceful_shutdown_interrupts_what_does_not_finish(make_app: Any) -> None:
    app = make_app(engine_enabled=True, admin_token="engine-test-token-0123456789")
    _create(app, "stuck", SLEEPER)
    client = app.test_client()
    execution_id = client.post("/webhooks/stuck", json={}).get_json()["execution_id"]
    db = app.extensions["hookrunner.db"]
    wait_for(lambda: _rows(db, "stuck")[0]["status"] == "running")
    engine = engine_of(app)
    assert engine is not None
    engine.shutdown(grace_seconds=0.2)
    (row,) = _rows(db, "stuck")
    assert row["id"] == execution_id
    assert row["status"] == "interrupted"
    assert row["error"] == "interrupted by worker shutdown"


def test_graceful_shutdown_lets_short_work_finish(make_app: Any) -> None:
    app = make_app(engine_enabled=True, admin_token="engine-test-token-0123456789")
    _create(
        app,
        "quick",
        {"type": "command", "argv": ["/bin/sh", "-c", "echo started; sleep 0.5; echo done"]},
    )
    app.test_client().post("/webhooks/quick", json={})
    db = app.extensions["hookrunner.db"]
    wait_for(lambda: _rows(db, "quick")[0]["status"] == "running")
    engine_of(app).shutdown(grace_seconds=20)  # type: ignore[union-attr]
    assert _rows(db, "quick")[0]["status"] == "succeeded"


@pytest.mark.sqlite_only  # the fault: another process holds SQLite's write lock
def test_outcome_and_output_survive_a_store_outage_at_the_end_of_a_run(
    make_app: Any, database_url: str, tmp_path: Any
) -> None:
    """The final writes wait for the store: recorded once, nothing stays running."""
    import sqlite3

    app = make_app(
        engine_enabled=True,
        admin_token="engine-test-token-0123456789",
        sqlite_busy_timeout_ms=50,
    )
    started = tmp_path / "started"
    release = tmp_path / "release"
    finished = tmp_path / "finished"
    _create(
        app,
        "outage",
        {
            "type": "command",
            "argv": [
                "/bin/sh",
                "-c",
                f"touch {started}; while [ ! -e {release} ]; do sleep 0.05; done;"
                f" touch {finished}; echo done",
            ],
        },
        retry={"max_attempts": 3, "backoff_seconds": 1},
    )
    client = app.test_client()
    execution_id = client.post("/webhooks/outage", json={}).get_json()["execution_id"]
    wait_for(started.exists)
    blocker = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # from now on every write of the worker fails
    release.touch()
    try:
        # The command ends while the store refuses writes; let the worker try and fail.
        wait_for(finished.exists)
        time.sleep(1.0)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

    def ended() -> dict[str, Any] | None:
        found = client.get(f"/admin/executions/{execution_id}", headers=ENGINE_AUTH).get_json()
        return found if found["status"] != "running" else None

    execution = wait_for(ended, timeout=30)
    assert execution["status"] == "succeeded"
    logs = client.get(f"/admin/executions/{execution_id}/logs", headers=ENGINE_AUTH).get_json()
    assert [item["line"] for item in logs["items"]] == ["done"]
    with app.app_context():
        assert len(_rows(get_db(), "outage")) == 1  # no retry of a run that succeeded
