"""The per-app service objects, built once in ``create_app`` and found through the app."""

from __future__ import annotations

import os

from flask import Flask, current_app

from app import lifecycle
from app.config import Settings
from app.execution import leases
from app.execution.engine import Engine
from app.ingest.dispatch import ExecutionService
from app.outbound import breakers
from app.store import Database, breaker_states
from app.triggers.registry import TriggerRegistry

_REGISTRY = "hookrunner.triggers"
_EXECUTIONS = "hookrunner.executions"
_ENGINE = "hookrunner.engine"


def init_app(app: Flask, db: Database, settings: Settings) -> None:
    """Build the registry, the engine (when enabled) and the execution service."""
    registry = TriggerRegistry(db)
    breakers.registry.configure(settings)
    owner = f"{leases.HOSTNAME}:{os.getpid()}"
    breakers.registry.state_hooks.append(
        lambda destination, state: breaker_states.record(db, destination, state, owner)
    )
    engine = Engine(db, settings, registry) if settings.engine_enabled else None
    app.extensions[_REGISTRY] = registry
    app.extensions[_ENGINE] = engine
    app.extensions[_EXECUTIONS] = ExecutionService(db, settings, engine)
    if engine is not None:
        lifecycle.register(engine)
        engine.start()


def trigger_registry() -> TriggerRegistry:
    registry: TriggerRegistry = current_app.extensions[_REGISTRY]
    return registry


def execution_service() -> ExecutionService:
    service: ExecutionService = current_app.extensions[_EXECUTIONS]
    return service


def engine_of(app: Flask) -> Engine | None:
    engine: Engine | None = app.extensions[_ENGINE]
    return engine


def registry_of(app: Flask) -> TriggerRegistry:
    registry: TriggerRegistry = app.extensions[_REGISTRY]
    return registry
