"""psycopg under gevent: the cooperative wait function is a tested fact, not a hope.

psycopg picks its wait function once, when it is imported; imported before
gevent patches the process it keeps a C-level wait that blocks every greenlet
of the worker. The store refuses to run that way, and a real Gunicorn gevent
worker on PostgreSQL runs executions (so its import order is the right one).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.conftest import wait_for
from tests.server import PROJECT_ROOT, gunicorn_server

TOKEN = "pg-gevent-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

_PROBE = """
import sys
if sys.argv[1] == "psycopg-first":
    import psycopg  # noqa: F401  (the mistake: imported before patching)
from gevent import monkey
monkey.patch_all()
from app.store.postgres.database import check_wait_function
try:
    print(check_wait_function())
except RuntimeError as exc:
    print("refused:", exc)
"""


@pytest.mark.parametrize(
    ("order", "expected"), [("patched-first", "wait_"), ("psycopg-first", "refused:")]
)
def test_store_refuses_psycopg_imported_before_gevent_patching(order: str, expected: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, order],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.startswith(expected), result.stdout + result.stderr
    if order == "patched-first":
        assert result.stdout.strip() != "wait_c"


@pytest.mark.slow
@pytest.mark.parametrize("store_kind", ["postgresql"], indirect=True)
def test_gevent_workers_on_postgresql_run_executions(tmp_path: Path, database_url: str) -> None:
    env = {"ADMIN_TOKEN": TOKEN, "DATABASE_URL": database_url}
    with gunicorn_server(tmp_path, env=env, workers=2) as server:
        document = {
            "name": "hello",
            "auth": {"scheme": "none"},
            "dedup": {"key": "none"},
            "action": {"type": "command", "argv": ["/bin/echo", "{{ body.word }}"]},
        }
        created = requests.post(
            f"{server.base_url}/admin/triggers", json=document, headers=AUTH, timeout=10
        )
        assert created.status_code == 201, created.text
        ids = []
        for word in ("one", "two", "three", "four"):
            answer = requests.post(
                f"{server.base_url}/webhooks/hello", json={"word": word}, timeout=10
            )
            assert answer.status_code == 202, answer.text
            ids.append(answer.json()["execution_id"])

        def finished() -> list[dict[str, object]] | None:
            rows = [
                requests.get(
                    f"{server.base_url}/admin/executions/{i}", headers=AUTH, timeout=10
                ).json()
                for i in ids
            ]
            return rows if all(row["status"] == "succeeded" for row in rows) else None

        wait_for(finished, timeout=30)
        logs = requests.get(
            f"{server.base_url}/admin/executions/{ids[2]}/logs", headers=AUTH, timeout=10
        ).json()
    assert [item["line"] for item in logs["items"]] == ["three"]
