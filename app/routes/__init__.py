"""HTTP routes: webhooks ingest, the admin API, health and metrics."""

from __future__ import annotations

from typing import Any

from flask_openapi3 import OpenAPI

from app.routes import api_spec, health, metrics, webhooks
from app.routes.admin import register_admin
from app.routes.ui import register_ui


def register_blueprints(app: OpenAPI) -> None:
    app.register_api(health.bp)
    app.register_blueprint(webhooks.bp)
    metrics.init_app(app)
    register_admin(app)
    register_ui(app)

    # The spec at the root as well as under the docs page (/docs/openapi.json).
    def openapi_json() -> dict[str, Any]:
        spec = app.api_doc  # generated once, then cached (and shared with /docs/)
        api_spec.complete(spec)  # idempotent
        return spec

    app.add_url_rule("/openapi.json", "openapi_json", openapi_json)
    if "openapi.doc_url" in app.view_functions:  # the docs page reads the same spec
        app.view_functions["openapi.doc_url"] = openapi_json
    # /docs/ opens Swagger UI itself rather than a page listing the installed UIs (its
    # relative asset and spec URLs resolve the same from /docs/ as from /docs/swagger).
    if "swagger.swagger" in app.view_functions and "openapi.openapi" in app.view_functions:
        app.view_functions["openapi.openapi"] = app.view_functions["swagger.swagger"]
