"""``/ui/login`` and ``/ui/logout``: exchange a token for a session cookie, and end it.

The sign-in form is protected by its own double-submit CSRF token (a cookie set
with the form, echoed in a hidden field), since there is no session yet. Failed
sign-ins are counted per client address (behind ``TRUSTED_PROXIES``, the
address the proxies report) in this process: after
:data:`MAX_FAILURES` within :data:`FAILURE_WINDOW_SECONDS` further attempts are
429 until the window has passed.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict, deque

from flask import Response, g, redirect, render_template, request, url_for

from app.errors import AppError, Forbidden
from app.ingest.client import remote_address
from app.routes.ui import bp
from app.ui import sessions
from app.wiring import components

MAX_FAILURES = 10
FAILURE_WINDOW_SECONDS = 300.0
MAX_ADDRESSES = 10_000  # addresses with recent failures kept; the stalest go first


class TooManySignIns(AppError):
    status = 429
    code = "too_many_requests"
    message = "Too many failed sign-ins from this address; wait a few minutes."


class SignInLimiter:
    """Failed sign-ins per client address within a sliding window, in this process.

    :meth:`begin` counts an attempt before the token is looked up, under the
    lock, so concurrent attempts cannot all pass the check; :meth:`succeeded`
    takes it back. Addresses without recent failures are forgotten, and at most
    ``max_addresses`` are kept.
    """

    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window_seconds: float = FAILURE_WINDOW_SECONDS,
        max_addresses: int = MAX_ADDRESSES,
    ) -> None:
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self.max_addresses = max_addresses
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def begin(self, address: str) -> bool:
        """Count an attempt from ``address``; False (nothing counted) once it is over the limit."""
        now = time.monotonic()
        with self._lock:
            window = self._failures.pop(address, deque())
            while window and now - window[0] > self.window_seconds:
                window.popleft()
            if len(window) >= self.max_failures:
                self._failures[address] = window
                return False
            window.append(now)
            self._failures[address] = window  # the most recent attempt last
            while len(self._failures) > self.max_addresses:
                self._failures.popitem(last=False)
            return True

    def succeeded(self, address: str) -> None:
        """The attempt counted by :meth:`begin` signed in: it was not a failure."""
        with self._lock:
            window = self._failures.get(address)
            if window:
                window.pop()
            if not window:
                self._failures.pop(address, None)

    def tracked(self) -> int:
        with self._lock:
            return len(self._failures)


limiter = SignInLimiter()


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
    address = remote_address() or "?"  # behind TRUSTED_PROXIES: the browser, not the proxy
    if not limiter.begin(address):
        raise TooManySignIns()
    built = components()
    token = request.form.get("token", "").strip()
    token_id = sessions.signer().token_id_for(token) if token else None
    if token_id is None:
        return _form(401, "That token is not valid (or has been revoked).")
    limiter.succeeded(address)
    response: Response = redirect(_safe_next(request.form.get("next")), code=303)  # type: ignore[assignment]
    sessions.set_session_cookie(response, sessions.signer().new_cookie(token_id), built.settings)
    response.delete_cookie(sessions.LOGIN_COOKIE, path="/ui/login")
    return response


@bp.post("/logout")
def logout() -> Response:
    session: sessions.Session = g.ui_session  # the guard checked it and its CSRF token
    sessions.signer().end(session)  # a copy of the cookie stops working too
    response: Response = redirect(url_for("ui.login"), code=303)  # type: ignore[assignment]
    sessions.clear_session_cookie(response, components().settings)
    return response
