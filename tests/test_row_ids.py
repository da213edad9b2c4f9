"""Row ids: UUID version 7, ordered by creation time, so a burst's inserts stay together."""

from __future__ import annotations

import itertools
import types
import uuid
from typing import Any

import pytest
from flask.testing import FlaskClient

from app.store import Database, row_ids
from app.store.row_ids import new_row_id
from tests.conftest import github_headers

PUSH = b'{"ref": "refs/heads/main"}'
MS = 1_000_000  # nanoseconds


def _clock(monkeypatch: pytest.MonkeyPatch, start_ms: int, step_ms: int) -> None:
    """Make the ids' clock tick ``step_ms`` per id, from ``start_ms``."""
    ticks = itertools.count(start_ms * MS, step_ms * MS)
    monkeypatch.setattr(row_ids, "time", types.SimpleNamespace(time_ns=lambda: next(ticks)))


def test_an_id_is_a_version_7_uuid_in_the_shape_of_the_earlier_ids() -> None:
    row_id = new_row_id()
    parsed = uuid.UUID(row_id)
    assert len(row_id) == 32 and row_id == parsed.hex  # 32 lowercase hex digits, no dashes
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122


def test_an_id_starts_with_its_creation_millisecond(monkeypatch: pytest.MonkeyPatch) -> None:
    _clock(monkeypatch, start_ms=1_796_000_000_123, step_ms=0)
    assert uuid.UUID(new_row_id()).int >> 80 == 1_796_000_000_123


def test_ids_of_later_milliseconds_sort_after_earlier_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _clock(monkeypatch, start_ms=1_796_000_000_000, step_ms=1)
    made = [new_row_id() for _ in range(500)]
    assert sorted(made) == made


def test_ids_of_one_millisecond_do_not_collide(monkeypatch: pytest.MonkeyPatch) -> None:
    _clock(monkeypatch, start_ms=1_796_000_000_000, step_ms=0)
    made = [new_row_id() for _ in range(20_000)]
    assert len(set(made)) == len(made)
    assert {row_id[:12] for row_id in made} == {f"{1_796_000_000_000:012x}"}


def test_deliveries_and_executions_sit_in_their_indexes_in_arrival_order(
    client: FlaskClient, db: Database, make_trigger: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_trigger()
    _clock(monkeypatch, start_ms=1_796_000_000_000, step_ms=1)
    answers = []
    for n in range(6):
        response = client.post(
            "/webhooks/deploy", data=PUSH, headers=github_headers(PUSH, f"order-{n}")
        )
        assert response.status_code == 202
        answers.append(response.get_json())
    with db.read() as conn:
        deliveries = [
            row["id"] for row in conn.execute("SELECT id FROM deliveries ORDER BY id").fetchall()
        ]
        executions = [
            row["id"] for row in conn.execute("SELECT id FROM executions ORDER BY id").fetchall()
        ]
    assert deliveries == [answer["delivery_id"] for answer in answers]
    assert executions == [answer["execution_id"] for answer in answers]
    assert all(uuid.UUID(row_id).version == 7 for row_id in deliveries + executions)
