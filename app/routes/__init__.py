"""HTTP routes: webhooks ingest, the admin API, health and metrics."""

from __future__ import annotations

from typing import Any

from flask_openapi3 import OpenAPI

from app.routes import health, ingest_spec, metrics, webhooks
from app.routes.admin import register_admin


def register_blueprints(app: OpenAPI) -> None:
    app.register_api(health.bp)
    app.register_blueprint(webhooks.bp)
    metrics.init_app(app)
    register_admin(app)

    # The spec at the root as well as under the docs page (/docs/openapi.json).
    def openapi_json() -> dict[str, Any]:
        spec = app.api_doc  # generated once, then cached (and shared with /docs/)
        ingest_spec.add_to(spec)
        return spec

    app.add_url_rule("/openapi.json", "openapi_json", openapi_json)
    if "openapi.doc_url" in app.view_functions:  # the docs page reads the same spec
        app.view_functions["openapi.doc_url"] = openapi_json
