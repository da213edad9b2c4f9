from __future__ import annotations

from app.clock import utc_now_iso
from app.db import Database
from app.scheduler import Job, run_elected


def test_only_one_owner_runs_a_job_per_interval(db: Database) -> None:
    runs: list[str] = []
    job = Job("count", 60, lambda _db: runs.append("ran"))
    assert run_elected(db, job, owner="worker-a") is True
    assert run_elected(db, job, owner="worker-b") is False
    assert run_elected(db, job, owner="worker-a") is False
    assert runs == ["ran"]


def test_expired_lease_lets_the_next_tick_run(db: Database) -> None:
    runs: list[str] = []
    job = Job("count", 60, lambda _db: runs.append("ran"))
    run_elected(db, job, owner="worker-a")
    with db.write() as conn:
        conn.execute("UPDATE scheduler_leases SET expires_at = ?", (utc_now_iso(-1),))
    assert run_elected(db, job, owner="worker-b") is True
    assert runs == ["ran", "ran"]


def test_failing_job_is_logged_not_raised(db: Database) -> None:
    def boom(_db: Database) -> None:
        raise RuntimeError("job failed")

    assert run_elected(db, Job("boom", 60, boom), owner="w") is False
