"""100 identical deliveries sent at once to two Gunicorn workers start one execution.

Runs on SQLite and on PostgreSQL (the ``database_url`` fixture).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from app.config import load_settings
from app.store import open_store
from tests.conftest import GITHUB_SECRET, github_headers
from tests.server import gunicorn_server

pytestmark = pytest.mark.slow

TOKEN = "storm-admin-token-0123456789abcdef"


def test_duplicate_storm_across_two_workers_runs_once(tmp_path: Path, database_url: str) -> None:
    body = json.dumps({"ref": "refs/heads/main", "after": "abc"}).encode()
    headers = github_headers(body, "storm-delivery-1")
    env = {"ADMIN_TOKEN": TOKEN, "ENGINE_ENABLED": "0", "DATABASE_URL": database_url}
    with gunicorn_server(tmp_path, env=env, workers=2) as server:
        document = {
            "name": "deploy",
            "auth": {"scheme": "github", "secrets": [GITHUB_SECRET]},
            "action": {"type": "command", "argv": ["/bin/true"]},
        }
        created = requests.post(
            f"{server.base_url}/admin/triggers",
            json=document,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=5,
        )
        assert created.status_code == 201

        def send(_: int) -> tuple[int, str]:
            with requests.Session() as session:  # one connection each: spread over workers
                response = session.post(
                    f"{server.base_url}/webhooks/deploy", data=body, headers=headers, timeout=30
                )
            return response.status_code, response.json()["execution_id"]

        with ThreadPoolExecutor(50) as pool:
            answers = list(pool.map(send, range(100)))
        pids = {line for line in server.log_lines() if "Booting worker" in line}
        assert len(pids) == 2

    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] * 99 + [202]
    assert len({execution_id for _, execution_id in answers}) == 1
    store = open_store(load_settings(env={"DATABASE_URL": database_url}))
    try:
        with store.read() as conn:
            assert conn.execute("SELECT COUNT(*) FROM executions").fetchone()[0] == 1
            assert conn.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0] == 100
    finally:
        store.close()
