"""Liveness and readiness probes (outside /admin, no token)."""

from __future__ import annotations

from typing import Any

from flask_openapi3 import APIBlueprint, Tag

from app.errors import ServiceUnavailable
from app.store import get_db
from app.store.migrations import MigrationError, current_version, pending

bp = APIBlueprint("health", __name__, abp_tags=[Tag(name="health")])


@bp.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, Any]:
    return {"status": "ok"}


@bp.get("/readyz", summary="The store is reachable and migrations are current")
def readyz() -> dict[str, Any]:
    db = get_db()
    try:
        waiting = pending(db)
        version = current_version(db)
    except MigrationError as exc:
        raise ServiceUnavailable(f"schema not usable: {exc}") from exc
    if waiting:
        raise ServiceUnavailable(f"migrations pending: {waiting}")
    return {"status": "ready", "schema_version": version}
