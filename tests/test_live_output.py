"""Live output: the write pacing of OutputBuffer, wake-ups, and shared SSE reads."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from typing import Any

import pytest
from flask.testing import FlaskClient

from app.clock import utc_now_iso
from app.execution.output import FLUSH_INTERVAL_SECONDS, OutputBuffer, _FlushBudget
from app.live.notifier import Notifier
from app.live.streams import LiveStreams
from app.store import Database, execution_logs
from app.store import execution_queue as queue
from tests.conftest import github_headers, wait_for


def _queued_execution(client: FlaskClient, make_trigger: Any) -> str:
    make_trigger("live")
    body = b'{"after": "abc"}'
    accepted = client.post("/webhooks/live", data=body, headers=github_headers(body, "d-live"))
    assert accepted.status_code == 202
    return str(accepted.get_json()["execution_id"])


def _stored(db: Database, execution_id: str) -> list[str]:
    return [row["line"] for row in execution_logs.after(db, execution_id, 0, 1000)]


def test_one_notification_wakes_every_subscriber() -> None:
    topics = Notifier()
    subscriptions = [topics.subscribe("exe") for _ in range(50)]
    woke: list[bool] = []
    threads = [threading.Thread(target=lambda s=s: woke.append(s.wait(30))) for s in subscriptions]
    for thread in threads:
        thread.start()
    topics.notify("exe")
    for thread in threads:
        thread.join()
    assert woke == [True] * 50


def test_a_notification_between_clear_and_wait_is_not_lost() -> None:
    topics = Notifier()
    subscription = topics.subscribe("exe")
    subscription.clear()
    topics.notify("exe")
    assert subscription.wait(0) is True
    subscription.clear()
    assert subscription.wait(0) is False
    topics.notify("other")
    assert subscription.wait(0) is False


def test_versions_change_on_notify_and_never_repeat_for_a_new_follower() -> None:
    topics = Notifier()
    first = topics.subscribe("exe")
    seen = {topics.version("exe")}
    topics.notify("exe")
    assert topics.version("exe") not in seen
    seen.add(topics.version("exe"))
    topics.unsubscribe(first)
    assert topics.subscriber_count() == 0
    topics.subscribe("exe")
    assert topics.version("exe") not in seen


def test_unsubscribing_twice_does_not_end_another_stream() -> None:
    topics = Notifier()
    leaving, staying = topics.subscribe("exe"), topics.subscribe("exe")
    topics.unsubscribe(leaving)
    topics.unsubscribe(leaving)
    assert topics.subscriber_count() == 1
    staying.clear()
    assert staying.wait(0) is False  # still a live topic: no spurious wake-ups
    topics.notify("exe")
    assert staying.wait(0) is True
    topics.unsubscribe(staying)
    assert topics.subscriber_count() == 0


def test_flush_budget_allows_a_burst_then_paces_writes() -> None:
    now = [100.0]
    budget = _FlushBudget(rate=1 / FLUSH_INTERVAL_SECONDS, burst=2, clock=lambda: now[0])
    assert budget.seconds_until_allowed() == 0
    budget.spend()
    assert budget.seconds_until_allowed() == 0
    budget.spend()
    assert budget.seconds_until_allowed() == pytest.approx(FLUSH_INTERVAL_SECONDS)
    now[0] += FLUSH_INTERVAL_SECONDS / 2
    assert budget.seconds_until_allowed() == pytest.approx(FLUSH_INTERVAL_SECONDS / 2)
    budget.spend()  # a forced write (64 lines, close) leaves the bucket empty, not in debt
    assert budget.seconds_until_allowed() == pytest.approx(FLUSH_INTERVAL_SECONDS)
    now[0] += 60  # a quiet minute refills the burst, no more
    budget.spend()
    budget.spend()
    assert budget.seconds_until_allowed() > 0


def test_lines_stay_pending_when_a_write_fails(
    client: FlaskClient, make_trigger: Any, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.execution import output as output_module

    execution_id = _queued_execution(client, make_trigger)
    real_append = output_module.execution_logs.append
    failures = [sqlite3.OperationalError("database is locked")]

    def append_failing_once(*args: Any, **kwargs: Any) -> None:
        if failures:
            raise failures.pop()
        real_append(*args, **kwargs)

    monkeypatch.setattr(output_module.execution_logs, "append", append_failing_once)
    output = OutputBuffer(db, Notifier(), execution_id, max_bytes=100_000)
    try:
        output.line("stdout", "kept through a failed write")
        output.line("stdout", "and the next line")
    finally:
        output.close()
    assert _stored(db, execution_id) == ["kept through a failed write", "and the next line"]


def test_sparse_lines_are_stored_at_once_and_a_burst_follows_in_order(
    client: FlaskClient, make_trigger: Any, db: Database
) -> None:
    execution_id = _queued_execution(client, make_trigger)
    output = OutputBuffer(db, Notifier(), execution_id, max_bytes=100_000)
    try:
        output.line("stdout", "first")
        assert _stored(db, execution_id) == ["first"]  # written before line() returned
        output.line("stderr", "second")
        assert _stored(db, execution_id) == ["first", "second"]
        burst = [f"burst {i}" for i in range(100)]
        for text in burst:
            output.line("stdout", text)
        wait_for(lambda: len(_stored(db, execution_id)) == 102)
    finally:
        output.close()
    assert _stored(db, execution_id) == ["first", "second", *burst]


def test_followers_at_one_position_share_one_encoded_read(
    client: FlaskClient, make_trigger: Any, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.live import streams

    monkeypatch.setattr(streams, "_SHARE_SECONDS", 3600.0)  # shared however slow the test runs
    execution_id = _queued_execution(client, make_trigger)
    rows = [(seq, "2026-12-01T00:00:00.000Z", "stdout", f"line {seq}") for seq in (1, 2, 3)]
    execution_logs.append(db, execution_id, rows, output_bytes=21)
    notifier = Notifier()
    live = LiveStreams(db, notifier)
    streams = [closing(live.execution(execution_id, 0)) for _ in range(3)]
    with streams[0] as a, streams[1] as b, streams[2] as c:
        firsts = [(next(s), next(s), next(s)) for s in (a, b, c)]
        for retry, status, lines in firsts:
            assert retry.startswith("retry: ")
            assert status.startswith("event: status\n")
            assert lines.count("event: log\n") == 3
            assert lines.startswith("id: 1\nevent: log\n") and '"line":"line 3"' in lines
        assert firsts[0][2] is firsts[1][2] is firsts[2][2]  # encoded once, sent thrice
        assert notifier.subscriber_count() == 3

        (claim,) = queue.claim_batch(db, "live", "tests", 1, limit=1, now=utc_now_iso())
        with db.write() as conn:
            finished = queue.finish(
                conn,
                execution_id,
                token=claim.token,
                status="succeeded",
                exit_code=0,
                error=None,
                report={},
            )
        assert finished
        notifier.notify(execution_id)
        for stream in (a, b, c):
            events = "".join(stream)
            assert "event: status\n" in events and '"status":"succeeded"' in events
            assert events.endswith('"last_seq":3}\n\n') and "event: end\n" in events
    assert notifier.subscriber_count() == 0
