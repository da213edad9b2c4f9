"""HTTP routes: webhooks ingest, the admin API, health and metrics."""

from __future__ import annotations

from typing import Any

from flask_openapi3 import OpenAPI

from app.routes import health, metrics, webhooks
from app.routes.admin import register_admin


def register_blueprints(app: OpenAPI) -> None:
    app.register_api(health.bp)
    app.register_blueprint(webhooks.bp)
    metrics.init_app(app)
    register_admin(app)

    # The spec at the root as well as under the docs page (/docs/openapi.json).
    def openapi_json() -> dict[str, Any]:
        return app.api_doc

    app.add_url_rule("/openapi.json", "openapi_json", openapi_json)
