"""``GET /metrics``: Prometheus text exposition (no token, like most exporters).

Everything comes from the store (:class:`StoreCollector`) except the per-server
counters of :mod:`app.ingest.auth_failures`, :mod:`app.ingest.refusals` and
:mod:`app.execution.alerts`: with ``PROMETHEUS_MULTIPROC_DIR`` set (Gunicorn,
see ``gunicorn.conf.py``) every worker's file in it is summed; otherwise this
process's counters are served. Put the endpoint behind your network's access
control if trigger names are sensitive.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from flask import Blueprint, Flask, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from app.execution.alerts import NOTIFICATIONS
from app.ingest.auth_failures import AUTH_FAILURES
from app.ingest.refusals import REFUSALS
from app.jobs.metrics import StoreCollector
from app.store import get_db

bp = Blueprint("metrics", __name__)
_EXTENSION = "hookrunner.metrics_registry"


class _ProcessCounters(Collector):
    """This process's own counters (no multiprocess directory)."""

    def collect(self) -> Iterable[Metric]:
        return [*AUTH_FAILURES.collect(), *REFUSALS.collect(), *NOTIFICATIONS.collect()]


def _register_process_counters(registry: CollectorRegistry) -> None:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    else:
        registry.register(_ProcessCounters())


def init_app(app: Flask) -> None:
    with app.app_context():
        registry = CollectorRegistry(auto_describe=False)
        registry.register(StoreCollector(get_db()))
        _register_process_counters(registry)
    app.extensions[_EXTENSION] = registry
    app.register_blueprint(bp)


@bp.get("/metrics")
def metrics() -> Response:
    registry: CollectorRegistry = current_app.extensions[_EXTENSION]
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
