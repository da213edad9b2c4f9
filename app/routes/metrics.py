"""``GET /metrics``: Prometheus text exposition from the store (no token, like most exporters).

Put it behind your network's access control if trigger names are sensitive.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from app.jobs.metrics import StoreCollector
from app.store import get_db

bp = Blueprint("metrics", __name__)
_EXTENSION = "hookrunner.metrics_registry"


def init_app(app: Flask) -> None:
    with app.app_context():
        registry = CollectorRegistry(auto_describe=False)
        registry.register(StoreCollector(get_db()))
    app.extensions[_EXTENSION] = registry
    app.register_blueprint(bp)


@bp.get("/metrics")
def metrics() -> Response:
    registry: CollectorRegistry = current_app.extensions[_EXTENSION]
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
