"""The per-app service objects, built once in ``create_app`` and found through the app."""

from __future__ import annotations

from flask import Flask, current_app

from app.config import Settings
from app.db import Database
from app.services.execution_service import ExecutionService
from app.services.trigger_registry import TriggerRegistry

_REGISTRY = "hookrunner.triggers"
_EXECUTIONS = "hookrunner.executions"


def init_app(app: Flask, db: Database, settings: Settings) -> None:
    app.extensions[_REGISTRY] = TriggerRegistry(db)
    app.extensions[_EXECUTIONS] = ExecutionService(db, settings)


def trigger_registry() -> TriggerRegistry:
    registry: TriggerRegistry = current_app.extensions[_REGISTRY]
    return registry


def execution_service() -> ExecutionService:
    service: ExecutionService = current_app.extensions[_EXECUTIONS]
    return service
