"""Scheduled jobs: elected by lease rows so each runs once per interval, failures contained."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from app.clock import utc_now_iso
from app.jobs.scheduler import Job, JobContext, run_elected
from app.store import Database
from app.wiring import components


@pytest.fixture
def ctx(app: Flask, db: Database) -> JobContext:
    built = components(app)
    return JobContext(db, built.settings, built.triggers, built.notifier)


def test_only_one_owner_runs_a_job_per_interval(ctx: JobContext) -> None:
    runs: list[str] = []
    job = Job("count", 60, lambda _ctx: runs.append("ran"))
    assert run_elected(ctx, job, owner="worker-a") is True
    assert run_elected(ctx, job, owner="worker-b") is False
    assert run_elected(ctx, job, owner="worker-a") is False
    assert runs == ["ran"]


def test_expired_lease_lets_the_next_tick_run(ctx: JobContext, db: Database) -> None:
    runs: list[str] = []
    job = Job("count", 60, lambda _ctx: runs.append("ran"))
    run_elected(ctx, job, owner="worker-a")
    with db.write() as conn:
        conn.execute("UPDATE scheduler_leases SET expires_at = ?", (utc_now_iso(-1),))
    assert run_elected(ctx, job, owner="worker-b") is True
    assert runs == ["ran", "ran"]


def test_failing_job_is_logged_not_raised(ctx: JobContext) -> None:
    def boom(_ctx: Any) -> None:
        raise RuntimeError("job failed")

    assert run_elected(ctx, Job("boom", 60, boom), owner="w") is False
