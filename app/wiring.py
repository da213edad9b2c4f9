"""The per-app components, built in one step by ``create_app`` and kept on the app.

Everything with state - the store, the notifier that wakes live streams, the
circuit breakers, the trigger registry, the engine and the execution service -
lives on one :class:`Components` object in ``app.extensions``, so two apps in one
process (tests, or a store-specific notifier backend later) never share state.
Request handlers reach it through :func:`components`; code outside a request is
handed what it needs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from flask import Flask, current_app

from app import lifecycle as lifecycles
from app.config import Settings
from app.execution import leases
from app.execution.control import ExecutionControl
from app.execution.engine import Engine
from app.ingest.dispatch import ExecutionService
from app.ingest.history import IngestHistory
from app.ingest.waits import ResultWaiter
from app.lifecycle import Lifecycle
from app.live.notifier import Notifier, audience, role_of
from app.live.streams import LiveStreams
from app.outbound.breakers import BreakerRegistry
from app.store import Database, breaker_states
from app.triggers.admin import TriggerAdmin
from app.triggers.registry import TriggerRegistry

_EXTENSION = "hookrunner.components"


@dataclass(frozen=True)
class Components:
    settings: Settings
    store: Database
    notifier: Notifier
    breakers: BreakerRegistry
    triggers: TriggerRegistry
    engine: Engine | None
    executions: ExecutionService
    streams: LiveStreams
    control: ExecutionControl
    trigger_admin: TriggerAdmin
    history: IngestHistory
    lifecycle: Lifecycle
    waiter: ResultWaiter


def init_app(app: Flask, store: Database, settings: Settings) -> Components:
    """Build every component, start the engine when enabled, and keep them on ``app``."""
    built = build(store, settings)
    app.extensions[_EXTENSION] = built
    lifecycles.attach(app, built.lifecycle)
    return built


def build(store: Database, settings: Settings, *, serves_http: bool = True) -> Components:
    """Every component of one process on ``store``; the engine runs when enabled.

    Web workers reach the result through their app (:func:`init_app`); an
    engine process (:mod:`app.execution.process`) uses it directly and says
    ``serves_http=False``, so other processes ring it only with what engines
    act on (:func:`app.live.notifier.audience`).
    """
    backend = store.notification_backend()
    notifier = Notifier(backend)
    if backend is not None:
        role = role_of(serves_http=serves_http, runs_engine=settings.engine_enabled)
        backend.start(notifier.notify_local, role=role, audience=audience)
    breakers = BreakerRegistry()
    breakers.configure(settings)
    owner = f"{leases.HOSTNAME}:{os.getpid()}"
    breakers.state_hooks.append(
        lambda destination, state: breaker_states.record(store, destination, state, owner)
    )
    triggers = TriggerRegistry(store, notifier)
    engine = (
        Engine(store, settings, triggers, notifier, breakers) if settings.engine_enabled else None
    )
    lifecycle = Lifecycle()
    executions = ExecutionService(store, settings, notifier, engine)
    built = Components(
        settings=settings,
        store=store,
        notifier=notifier,
        breakers=breakers,
        triggers=triggers,
        engine=engine,
        executions=executions,
        streams=LiveStreams(store, notifier),
        control=ExecutionControl(store, notifier, triggers, executions),
        trigger_admin=TriggerAdmin(store, notifier),
        history=IngestHistory(store),
        lifecycle=lifecycle,
        waiter=ResultWaiter(store, notifier, settings.response_wait_max_seconds),
    )
    if engine is not None:
        lifecycle.register(engine)
        engine.start()
    return built


def components(app: Flask | None = None) -> Components:
    """The components of ``app`` (default: the app of the current context)."""
    target = app if app is not None else current_app
    built: Components = target.extensions[_EXTENSION]
    return built


def trigger_registry() -> TriggerRegistry:
    return components().triggers


def execution_service() -> ExecutionService:
    return components().executions


def engine_of(app: Flask) -> Engine | None:
    return components(app).engine


def registry_of(app: Flask) -> TriggerRegistry:
    return components(app).triggers
