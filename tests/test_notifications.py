"""Wake-ups across processes: on PostgreSQL, LISTEN/NOTIFY carries them between apps.

Two apps on one database stand for two hosts. Without a backend (SQLite) the
same code polls, so these tests run on PostgreSQL only.
"""

from __future__ import annotations

from typing import Any

import pytest

from app.execution import engine as engine_module
from app.live.notifier import ALL, CANCEL, TRIGGERS, WORK, audience
from app.wiring import components
from tests.conftest import ENGINE_AUTH, wait_for

pytestmark = pytest.mark.parametrize("store_kind", ["postgresql"], indirect=True)

TOKEN = "engine-test-token-0123456789"


def _listening(app: Any) -> None:
    backend = components(app).notifier.backend
    assert backend is not None
    assert backend.wait_listening(10)


def test_a_notification_in_one_app_wakes_followers_in_another(make_app: Any) -> None:
    here, there = make_app(), make_app()
    _listening(there)
    subscription = components(there).notifier.subscribe("exe_remote")
    try:
        subscription.clear()
        components(here).notifier.notify("exe_remote")
        assert subscription.wait(10)  # without the backend this times out
    finally:
        components(there).notifier.unsubscribe(subscription)


def test_work_queued_on_one_host_starts_at_once_on_another(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "SWEEP_SECONDS", 3600.0)  # no sweep would find it
    ingest = make_app(admin_token=TOKEN)  # engine off
    runner = make_app(admin_token=TOKEN, engine_enabled=True)
    _listening(runner)
    client = ingest.test_client()
    created = client.post(
        "/admin/triggers",
        json={
            "name": "remote",
            "auth": {"scheme": "none"},
            "dedup": {"key": "none"},
            "action": {"type": "command", "argv": ["/bin/echo", "ran"]},
        },
        headers=ENGINE_AUTH,
    )
    assert created.status_code == 201
    execution_id = client.post("/webhooks/remote", json={}).get_json()["execution_id"]

    def status() -> str | None:
        found = client.get(f"/admin/executions/{execution_id}", headers=ENGINE_AUTH).get_json()
        return found["status"] if found["status"] == "succeeded" else None

    assert wait_for(status, timeout=20) == "succeeded"


def test_cancel_requested_on_one_host_stops_the_run_on_another(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "SWEEP_SECONDS", 3600.0)
    api = make_app(admin_token=TOKEN)
    runner = make_app(admin_token=TOKEN, engine_enabled=True)
    _listening(runner)
    _listening(api)
    client = api.test_client()
    client.post(
        "/admin/triggers",
        json={
            "name": "long",
            "auth": {"scheme": "none"},
            "dedup": {"key": "none"},
            "action": {"type": "command", "argv": ["/bin/sleep", "30"]},
        },
        headers=ENGINE_AUTH,
    )
    execution_id = client.post("/webhooks/long", json={}).get_json()["execution_id"]

    def field(name: str) -> Any:
        return client.get(f"/admin/executions/{execution_id}", headers=ENGINE_AUTH).get_json()[name]

    wait_for(lambda: field("status") == "running", timeout=20)
    answer = client.post(f"/admin/executions/{execution_id}/cancel", headers=ENGINE_AUTH)
    assert answer.status_code == 202
    assert wait_for(lambda: field("status") == "cancelled", timeout=20)


def test_each_role_hears_only_the_topics_it_acts_on(database_url: str) -> None:
    """Engines are not woken by output or the feed, web workers not by queued work."""
    from app.store.postgres.database import PostgresDatabase

    stores = {role: PostgresDatabase(database_url) for role in ("engine", "web", "all", "cli")}
    heard: dict[str, list[str]] = {role: [] for role in stores}
    backends = {role: store.notification_backend() for role, store in stores.items()}
    try:
        for role in ("engine", "web", "all"):
            backends[role].start(heard[role].append, role=role, audience=audience)
            assert backends[role].wait_listening(10)
        backends["cli"].start(heard["cli"].append, listen=False)  # no audience: every role
        for topic in (WORK, "exe_1", ALL, TRIGGERS):
            backends["web"].publish(topic)
            backends["engine"].publish(topic)
        backends["cli"].publish("exe_cli")
        expected = {
            "engine": [WORK, TRIGGERS, "exe_cli"],
            "web": ["exe_1", ALL, TRIGGERS, "exe_cli"],
            "all": [WORK, "exe_1", ALL, TRIGGERS, "exe_cli"],
        }
        for role, topics in expected.items():
            wait_for(lambda role=role, topics=topics: set(heard[role]) >= set(topics))
        backends["all"].publish("exe_last")  # everything sent before these has arrived
        backends["all"].publish(CANCEL)
        wait_for(lambda: "exe_last" in heard["web"] and CANCEL in heard["engine"])
        assert {role: sorted(set(heard[role])) for role in expected} == {
            "engine": sorted([*expected["engine"], CANCEL]),
            "web": sorted([*expected["web"], "exe_last"]),
            "all": sorted(expected["all"]),
        }
        assert heard["cli"] == []
    finally:
        for store in stores.values():
            store.close()
