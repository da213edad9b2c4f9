"""The SQLite store's doorbell between processes, and what it wakes: triggers and engines."""

from __future__ import annotations

import socket
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest

from app.live.notifier import TRIGGERS
from app.store.sqlite.doorbell import DoorbellBackend, _datagrams, doorbell_directory
from app.wiring import components
from tests.conftest import trigger_document, wait_for

TOKEN = "doorbell-admin-token-0123456789abcdef"


class _Inbox:
    def __init__(self) -> None:
        self.topics: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, topic: str) -> None:
        with self.lock:
            self.topics.append(topic)


def test_a_ring_reaches_every_other_process_but_not_the_sender(tmp_path: Path) -> None:
    directory = tmp_path / "bell"
    inboxes = [_Inbox() for _ in range(3)]
    bells = [DoorbellBackend(directory) for _ in inboxes]
    for bell, inbox in zip(bells, inboxes, strict=True):
        bell.start(inbox)
    try:
        bells[0].publish("exec-1")
        wait_for(lambda: inboxes[1].topics == ["exec-1"] and inboxes[2].topics == ["exec-1"])
        assert inboxes[0].topics == []
        for topic in ("exec-2", "*"):  # sent together when published together
            bells[1].publish(topic)
        wait_for(lambda: "*" in inboxes[0].topics and "*" in inboxes[2].topics)
        assert set(inboxes[0].topics) == {"exec-2", "*"}
        assert set(inboxes[2].topics) == {"exec-1", "exec-2", "*"}
    finally:
        for bell in bells:
            bell.stop()
    assert list(directory.iterdir()) == []  # each stopped process removed its socket


def test_topics_published_together_share_datagrams_within_the_size_limit() -> None:
    assert _datagrams(["exec-1", "*", "~work"]) == [b"exec-1\n*\n~work"]
    big = ["x" * 3000, "y" * 3000, "z"]
    assert _datagrams(big) == [b"x" * 3000, b"y" * 3000 + b"\nz"]
    assert _datagrams(["a\nb"]) == [b"a b"]  # a newline never splits one topic in two


def test_the_socket_of_a_dead_process_is_removed(tmp_path: Path) -> None:
    directory = tmp_path / "bell"
    directory.mkdir()
    dead = directory / "999999-deadbeef.sock"
    orphan = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    orphan.bind(str(dead))
    orphan.close()  # the file stays, nobody listens: what a kill -9 leaves
    bell = DoorbellBackend(directory)
    bell.start(lambda _topic: None)
    try:
        bell.publish("anything")
        wait_for(lambda: not dead.exists())
    finally:
        bell.stop()


def test_long_database_paths_ring_in_the_temporary_directory(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 90) / "hookrunner.db"
    directory = doorbell_directory(str(deep))
    assert directory != deep.with_name("hookrunner.db.doorbell")
    assert len(str(directory / "1234567-abcdef12.sock")) < 108
    assert doorbell_directory(str(deep)) == directory  # every process finds the same one
    short = Path(tempfile.gettempdir()) / "h.db"
    assert doorbell_directory(str(short)) == short.with_name("h.db.doorbell")


@pytest.fixture
def two_workers(make_app: Any, store_kind: str) -> tuple[Any, Any]:
    """Two apps on one store, as two web workers are."""
    token = {"admin_token": TOKEN}
    return make_app(**token), make_app(**token)


def test_a_trigger_changed_in_one_worker_takes_effect_in_the_other(
    two_workers: tuple[Any, Any],
) -> None:
    first, second = two_workers
    headers = {"Authorization": f"Bearer {TOKEN}"}
    created = first.test_client().post("/admin/triggers", json=trigger_document(), headers=headers)
    assert created.status_code == 201
    with second.app_context():
        registry = components(second).triggers
        assert registry.get("deploy").enabled  # cached in the second worker now
    heard = threading.Event()
    components(second).notifier.watch(TRIGGERS, heard.set)

    changed = first.test_client().patch(
        "/admin/triggers/deploy", json={"enabled": False}, headers=headers
    )
    assert changed.status_code == 200
    assert heard.wait(10)  # by the doorbell (SQLite) or LISTEN/NOTIFY (PostgreSQL)
    with second.app_context():
        assert not registry.get("deploy").enabled


def test_each_role_is_rung_only_with_the_topics_it_acts_on(tmp_path: Path) -> None:
    from app.live.notifier import ALL, BOTH, ENGINE, WEB, WORK, audience

    directory = tmp_path / "bell"
    roles = [WEB, ENGINE, WEB, BOTH]
    inboxes = [_Inbox() for _ in roles]
    bells = [DoorbellBackend(directory) for _ in roles]
    for bell, inbox, role in zip(bells, inboxes, roles, strict=True):
        bell.start(inbox, role=role, audience=audience)
    try:
        for topic in ("exec-1", ALL, WORK, TRIGGERS):
            bells[0].publish(topic)
        wait_for(lambda: len(inboxes[3].topics) == 4 and TRIGGERS in inboxes[1].topics)
        wait_for(lambda: TRIGGERS in inboxes[2].topics)
        assert set(inboxes[1].topics) == {WORK, TRIGGERS}  # the engine: no output, no feed
        assert set(inboxes[2].topics) == {"exec-1", ALL, TRIGGERS}  # a web worker: no work
        assert set(inboxes[3].topics) == {"exec-1", ALL, WORK, TRIGGERS}
    finally:
        for bell in bells:
            bell.stop()
