"""Claims across workers: concurrency limits hold globally, and every write is fenced.

Each test runs on SQLite and on PostgreSQL (see ``database_url`` in conftest):
several apps on one database stand for several workers or hosts.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from flask import Flask

from app.clock import utc_now_iso
from app.store import execution_queue as queue
from app.store import get_db
from tests.conftest import ENGINE_AUTH, wait_for

TOKEN = "engine-test-token-0123456789"
FINAL = {"succeeded", "failed", "timed_out", "cancelled", "interrupted"}

# Appends "start" and "end" around a short sleep; overlapping runs would interleave.
_MARK = (
    "import sys, time\n"
    "with open(sys.argv[1], 'a') as f: f.write('start\\n')\n"
    "time.sleep(0.15)\n"
    "with open(sys.argv[1], 'a') as f: f.write('end\\n')\n"
)


def _create(app: Flask, document: dict[str, Any]) -> None:
    response = app.test_client().post("/admin/triggers", json=document, headers=ENGINE_AUTH)
    assert response.status_code == 201, response.get_json()


def _statuses(app: Flask, ids: list[str]) -> list[str]:
    client = app.test_client()
    return [
        client.get(f"/admin/executions/{i}", headers=ENGINE_AUTH).get_json()["status"] for i in ids
    ]


def test_two_engines_never_run_two_of_a_max_one_trigger_at_once(
    make_app: Any, tmp_path: Path
) -> None:
    marks = tmp_path / "marks.txt"
    first = make_app(engine_enabled=True, admin_token=TOKEN, execution_pool_size=4)
    second = make_app(engine_enabled=True, admin_token=TOKEN, execution_pool_size=4)
    _create(
        first,
        {
            "name": "serial",
            "auth": {"scheme": "none"},
            "dedup": {"key": "none"},
            "concurrency": {"max": 1, "on_busy": "queue"},
            "action": {"type": "command", "argv": [sys.executable, "-c", _MARK, str(marks)]},
        },
    )
    ids = []
    for number in range(6):
        sender = (first if number % 2 else second).test_client()
        response = sender.post("/webhooks/serial", json={"n": number})
        assert response.status_code == 202, response.get_json()
        ids.append(response.get_json()["execution_id"])
    wait_for(lambda: all(s in FINAL for s in _statuses(first, ids)), timeout=60)
    assert _statuses(first, ids) == ["succeeded"] * 6
    assert marks.read_text().split() == ["start", "end"] * 6  # one at a time, across both


def test_a_reaped_attempt_cannot_overwrite_what_happened_since(make_app: Any) -> None:
    """The final write of an attempt presents its claim token; a stale one matches nothing."""
    app = make_app(admin_token=TOKEN)  # engine off: the test claims by hand
    client = app.test_client()
    _create(
        app,
        {
            "name": "fenced",
            "auth": {"scheme": "none"},
            "dedup": {"key": "none"},
            "action": {"type": "command", "argv": ["/bin/true"]},
        },
    )
    assert client.post("/webhooks/fenced", json={}).status_code == 202
    with app.app_context():
        db = get_db()
        (stale,) = queue.claim_batch(db, "fenced", "worker-a", 1, limit=1, now=utc_now_iso())
        with db.write() as conn:  # the reaper ends attempt 1 (its owner looked dead)
            assert queue.finish(
                conn,
                stale.execution_id,
                token=stale.token,
                status="interrupted",
                exit_code=None,
                error="reaped",
                report={},
            )
        with db.write() as conn:  # the old owner comes back and tries to record success
            late = queue.finish(
                conn,
                stale.execution_id,
                token=stale.token,
                status="succeeded",
                exit_code=0,
                error=None,
                report={},
            )
            wrong = queue.finish(
                conn,
                stale.execution_id,
                token="not-the-token",
                status="succeeded",
                exit_code=0,
                error=None,
                report={},
            )
    assert (late, wrong) == (False, False)
    assert _statuses(app, [stale.execution_id]) == ["interrupted"]


def test_claims_respect_the_limit_and_hand_out_distinct_tokens(make_app: Any) -> None:
    app = make_app(admin_token=TOKEN)
    _create(
        app,
        {
            "name": "pair",
            "auth": {"scheme": "none"},
            "dedup": {"key": "none"},
            "concurrency": {"max": 2, "on_busy": "queue"},
            "action": {"type": "command", "argv": ["/bin/true"]},
        },
    )
    client = app.test_client()
    for number in range(5):
        assert client.post("/webhooks/pair", json={"n": number}).status_code == 202
    with app.app_context():
        db = get_db()
        now = utc_now_iso()
        first = queue.claim_batch(db, "pair", "worker-a", 2, limit=10, now=now)
        second = queue.claim_batch(db, "pair", "worker-b", 2, limit=10, now=now)
        assert queue.triggers_with_work(db) == ["pair"]
    assert len(first) == 2 and second == []
    assert len({claim.token for claim in first}) == 2


def test_racing_claimers_never_exceed_the_limit(make_app: Any) -> None:
    """Claimers released at the same instant: the per-trigger count-and-claim is serialised."""
    import threading

    app = make_app(admin_token=TOKEN)
    _create(
        app,
        {
            "name": "race",
            "auth": {"scheme": "none"},
            "dedup": {"key": "none"},
            "concurrency": {"max": 1, "on_busy": "queue"},
            "action": {"type": "command", "argv": ["/bin/true"]},
        },
    )
    client = app.test_client()
    with app.app_context():
        db = get_db()
        for round_number in range(15):
            for copy in range(4):
                response = client.post("/webhooks/race", json={"r": round_number, "c": copy})
                assert response.status_code == 202
            barrier = threading.Barrier(4)
            claimed: list[queue.Claim] = []

            def claimer(
                name: str,
                barrier: threading.Barrier = barrier,
                claimed: list[queue.Claim] = claimed,
            ) -> None:
                barrier.wait()
                claimed.extend(queue.claim_batch(db, "race", name, 1, 1, utc_now_iso()))

            threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert len(claimed) == 1, f"round {round_number}: {len(claimed)} running at once"
            with db.write() as conn:  # end this round: nothing runs, nothing stays queued
                conn.execute(
                    "UPDATE executions SET status = 'cancelled' WHERE trigger = 'race'"
                    " AND status IN ('queued', 'running')"
                )


def _race_webhooks(apps: list[Flask], trigger: str, count: int) -> list[int]:
    """``count`` deliveries released at once, spread over ``apps``; their status codes."""
    import threading

    barrier = threading.Barrier(count)
    codes: list[int] = []

    def send(number: int) -> None:
        client = apps[number % len(apps)].test_client()
        barrier.wait()
        codes.append(client.post(f"/webhooks/{trigger}", json={"n": number}).status_code)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(codes)


def test_admission_limits_hold_when_deliveries_race_across_workers(make_app: Any) -> None:
    """``queue_max`` and ``on_busy: reject`` count under the trigger's lock, on every host."""
    apps = [make_app(admin_token=TOKEN), make_app(admin_token=TOKEN)]
    for name, concurrency in (
        ("bounded", {"max": 1, "on_busy": "queue", "queue_max": 3}),
        ("picky", {"max": 2, "on_busy": "reject"}),
    ):
        _create(
            apps[0],
            {
                "name": name,
                "auth": {"scheme": "none"},
                "dedup": {"key": "none"},
                "concurrency": concurrency,
                "action": {"type": "command", "argv": ["/bin/true"]},
            },
        )
    assert _race_webhooks(apps, "bounded", 12) == [202] * 3 + [429] * 9
    assert _race_webhooks(apps, "picky", 10) == [202] * 2 + [429] * 8
