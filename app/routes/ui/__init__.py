"""The dashboard at ``/ui/``: server-rendered pages over the same services as the admin API.

One blueprint (``ui``) holds every page; each module here adds one page group.
:func:`register_ui` installs the guard that runs before every ``/ui`` request
(known route or not):

* ``/ui/login`` and ``/ui/static/`` are open; everything else needs a session
  (:mod:`app.ui.sessions`). Without one a page ``GET`` redirects to the
  sign-in form, a stream is 401, and any other method is 403.
* Every request that is not ``GET``/``HEAD``/``OPTIONS`` must carry the
  session's CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``),
  or it is 403 and changes nothing; a ``viewer`` session's writes are 403 too.
* Every ``/ui`` response carries a strict Content-Security-Policy (no inline
  script or style), ``X-Content-Type-Options: nosniff``,
  ``Referrer-Policy: same-origin`` and ``Cache-Control: no-store`` (pages).
* Errors under ``/ui`` render the dashboard's error page (no stack traces).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)

from app.auth import READ_METHODS
from app.errors import Forbidden, Unauthorized, register_error_page
from app.ingest.body import request_data
from app.ui import sessions

UI_PREFIX = "/ui"
_UI_DIR = Path(__file__).resolve().parents[2] / "ui"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
_LOGIN = "/ui/login"  # exactly: a path that merely starts so is not open
_STATIC = "/ui/static/"
_LOGOUT = "/ui/logout"  # any signed-in role may sign out

bp = Blueprint(
    "ui",
    __name__,
    url_prefix=UI_PREFIX,
    template_folder=str(_UI_DIR / "templates"),
    static_folder=str(_UI_DIR / "static"),
    static_url_path="/static",
)


def is_ui_path(path: str) -> bool:
    return path == UI_PREFIX or path.startswith(UI_PREFIX + "/")


def can_write() -> bool:
    session: sessions.Session | None = g.get("ui_session")
    return session is not None and session.role == "admin"


def _guard() -> Response | None:
    path = request.path
    if not is_ui_path(path) or path == _LOGIN or path.startswith(_STATIC):
        return None
    session = sessions.signer().load(request.cookies.get(sessions.COOKIE))
    if session is None:
        if request.method in ("GET", "HEAD") and not path.endswith("/stream"):
            target = request.full_path.rstrip("?")
            return redirect(url_for("ui.login", next=target), code=303)  # type: ignore[return-value]
        if request.method in READ_METHODS:
            raise Unauthorized("Sign in first.")
        raise Forbidden("Sign in first; this request changed nothing.")
    g.ui_session = session
    g.token_role = session.role
    if request.method not in READ_METHODS:
        # A form cut short (the client closed early) is refused, never half applied.
        request_data(current_app.config["MAX_CONTENT_LENGTH"])
        given = request.form.get(sessions.CSRF_FIELD) or request.headers.get(sessions.CSRF_HEADER)
        if not sessions.csrf_matches(session.csrf, given):
            raise Forbidden("The form's CSRF token is missing or wrong; nothing was changed.")
        if session.role != "admin" and path != _LOGOUT:
            raise Forbidden("A viewer may only look; nothing was changed.")
    return None


def _security_headers(response: Response) -> Response:
    if is_ui_path(request.path):
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Frame-Options"] = "DENY"
        if not request.path.startswith(_STATIC):  # pages and live streams alike
            response.headers["Cache-Control"] = "no-store"
    return response


def _error_page(status: int, code: str, message: str) -> Response:
    body = render_template(
        "error.html", status=status, code=code, message=message, request_id=g.get("request_id")
    )
    return Response(body, status=status, mimetype="text/html")


def page_url(endpoint: str, args: dict[str, Any], **changes: Any) -> str:
    """``endpoint``'s URL with the current filters, some changed (None drops one)."""
    merged = {k: v for k, v in {**args, **changes}.items() if v not in (None, "")}
    base = url_for(endpoint)
    return f"{base}?{urlencode(merged)}" if merged else base


# The main navigation: (endpoint, label, section); pages not installed are left out.
NAV = (
    ("ui.overview", "Overview", "overview"),
    ("ui.triggers", "Triggers", "triggers"),
    ("ui.deliveries", "Deliveries", "deliveries"),
    ("ui.executions", "Executions", "executions"),
    ("ui.dedup_keys", "Dedup keys", "dedup"),
)


def _template_globals() -> dict[str, Any]:
    session: sessions.Session | None = g.get("ui_session")
    return {
        "nav": [item for item in NAV if item[0] in current_app.view_functions],
        "ui_session": session,
        "can_write": can_write(),
        "csrf_token": session.csrf if session else "",
        "page_url": page_url,
    }


@bp.get("")
def root() -> Response:
    return redirect(url_for("ui.overview"), code=308)  # type: ignore[return-value]


def register_ui(app: Flask) -> None:
    from app.routes.ui import (  # noqa: F401 - each adds its routes to bp
        auth,
        dedup_keys,
        deliveries,
        executions,
        overview,
        triggers,
    )
    from app.wiring import components

    built = components(app)
    sessions.init_app(app, built.store, built.settings)
    app.before_request(_guard)
    app.after_request(_security_headers)
    app.context_processor(_template_globals)
    app.register_blueprint(bp)
    register_error_page(app, UI_PREFIX, _error_page)
