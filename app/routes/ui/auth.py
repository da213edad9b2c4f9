"""``/ui/login`` and ``/ui/logout``: exchange a token for a session cookie, and end it.

The sign-in form is protected by its own double-submit CSRF token (a cookie set
with the form, echoed in a hidden field), since there is no session yet. Failed
sign-ins are counted per client address in this process: after
:data:`MAX_FAILURES` within :data:`FAILURE_WINDOW_SECONDS` further attempts are
429 until the window has passed.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import defaultdict, deque

from flask import Response, g, redirect, render_template, request, url_for

from app.errors import AppError, Forbidden
from app.routes.ui import bp
from app.ui import sessions
from app.wiring import components

MAX_FAILURES = 10
FAILURE_WINDOW_SECONDS = 300.0
_failures: dict[str, deque[float]] = defaultdict(deque)
_failures_lock = threading.Lock()


class TooManySignIns(AppError):
    status = 429
    code = "too_many_requests"
    message = "Too many failed sign-ins from this address; wait a few minutes."


def _recent_failures(address: str) -> deque[float]:
    now = time.monotonic()
    window = _failures[address]
    while window and now - window[0] > FAILURE_WINDOW_SECONDS:
        window.popleft()
    return window


def _safe_next(target: str | None) -> str:
    """Only a path inside the dashboard (no scheme, host or ``//``) is followed."""
    if target and (target == "/ui" or target.startswith(("/ui/", "/ui?"))) and "\\" not in target:
        return target
    return url_for("ui.overview")


def _form(status: int = 200, error: str | None = None) -> Response:
    login_csrf = secrets.token_urlsafe(24)
    body = render_template(
        "login.html", login_csrf=login_csrf, error=error, next=request.values.get("next", "")
    )
    response = Response(body, status=status, mimetype="text/html")
    settings = components().settings
    response.set_cookie(
        sessions.LOGIN_COOKIE,
        login_csrf,
        max_age=3600,
        path="/ui/login",
        secure=sessions.cookie_secure(settings),
        httponly=True,
        samesite="Strict",
    )
    return response


@bp.get("/login")
def login() -> Response:
    return _form()


@bp.post("/login")
def login_submit() -> Response:
    expected = request.cookies.get(sessions.LOGIN_COOKIE, "")
    if not expected or not sessions.csrf_matches(expected, request.form.get(sessions.CSRF_FIELD)):
        raise Forbidden("The sign-in form expired or was not sent by this site; try again.")
    address = request.remote_addr or "?"
    with _failures_lock:
        if len(_recent_failures(address)) >= MAX_FAILURES:
            raise TooManySignIns()
    built = components()
    token = request.form.get("token", "").strip()
    token_id = sessions.signer().token_id_for(token) if token else None
    if token_id is None:
        with _failures_lock:
            _recent_failures(address).append(time.monotonic())
        return _form(401, "That token is not valid (or has been revoked).")
    response: Response = redirect(_safe_next(request.form.get("next")), code=303)  # type: ignore[assignment]
    sessions.set_session_cookie(response, sessions.signer().new_cookie(token_id), built.settings)
    response.delete_cookie(sessions.LOGIN_COOKIE, path="/ui/login")
    return response


@bp.post("/logout")
def logout() -> Response:
    _ = g.ui_session  # the guard checked the session and its CSRF token
    response: Response = redirect(url_for("ui.login"), code=303)  # type: ignore[assignment]
    sessions.clear_session_cookie(response, components().settings)
    return response
