"""Two Gunicorn workers each start a scheduler; each job still runs once per interval."""

from __future__ import annotations

import itertools
import json
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import pytest

from app.jobs.scheduler import JOBS
from tests.conftest import wait_for
from tests.server import gunicorn_server

pytestmark = pytest.mark.slow

INTERVAL = 1


def _runs(lines: list[str]) -> dict[str, list[tuple[datetime, str]]]:
    runs: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for line in lines:
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if record.get("message") == "scheduled job ran":
            stamp = datetime.fromisoformat(record["timestamp"])
            runs[record["job"]].append((stamp, record["owner"]))
            assert record["request_id"] is None
    return runs


def test_each_job_runs_once_per_interval_with_two_workers(tmp_path: Path) -> None:
    env = {
        "GUNICORN_WORKERS": "2",
        "SCHEDULER_ENABLED": "1",
        "SCHEDULER_INTERVAL_SECONDS": str(INTERVAL),
    }
    with gunicorn_server(tmp_path, env=env, workers=2) as server:
        booted = wait_for(
            lambda: [line for line in server.log_lines() if "Booting worker" in line][1:] or None
        )
        assert booted
        time.sleep(5 * INTERVAL)  # let several intervals pass; the assertions count runs
        lines = server.log_lines()
    runs = _runs(lines)
    assert set(runs) == {job.name for job in JOBS}
    for job, stamps in runs.items():
        stamps.sort()
        assert len(stamps) >= 2, job
        gaps = [(b[0] - a[0]).total_seconds() for a, b in itertools.pairwise(stamps)]
        # The lease (0.9 x interval) is what keeps the second worker from a second run.
        assert min(gaps) >= 0.85 * INTERVAL, (job, gaps)
    owners = {owner for stamps in runs.values() for _, owner in stamps}
    assert owners  # the runs came from the workers' schedulers
