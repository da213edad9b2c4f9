"""The dashboard's foundation: sign-in, session cookies, CSRF, roles, CSP and error pages."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.auth import create_token, digest
from app.store import Database, admin_tokens, get_db
from app.ui import sessions
from app.wiring import components
from tests.dashboard import csrf_of, sign_in

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _session_cookie(client: FlaskClient) -> str | None:
    cookie = client.get_cookie(sessions.COOKIE, path="/ui")
    return cookie.value if cookie else None


def test_pages_redirect_to_sign_in_and_streams_are_401(client: FlaskClient) -> None:
    response = client.get("/ui/executions?status=failed")
    assert response.status_code == 303
    assert response.headers["Location"] == "/ui/login?next=/ui/executions?status%3Dfailed"
    assert client.get("/ui/stream").status_code == 401
    assert client.get("/ui/executions/x/stream").status_code == 401
    # Unknown paths need a session too: nothing under /ui answers without one.
    assert client.get("/ui/no-such-page").status_code == 303


def test_sign_in_sets_a_strict_http_only_cookie_without_the_token(
    client: FlaskClient, db: Database
) -> None:
    token = create_token(db, "ops")
    form = client.get("/ui/login")
    assert form.status_code == 200
    response = client.post(
        "/ui/login",
        data={"token": token, "csrf_token": csrf_of(form.text), "next": "/ui/?from=mail"},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/ui/?from=mail"
    set_cookie = next(
        v for v in response.headers.getlist("Set-Cookie") if v.startswith(sessions.COOKIE)
    )
    assert "HttpOnly" in set_cookie
    assert "SameSite=Strict" in set_cookie
    assert "Path=/ui" in set_cookie
    assert "Max-Age=43200" in set_cookie
    assert "Secure" not in set_cookie  # plain HTTP, SESSION_COOKIE_SECURE unset
    value = _session_cookie(client)
    assert value and token not in value
    assert client.get("/ui/?from=mail").status_code == 200


def test_cookie_is_secure_over_https_or_when_configured(make_app: Any) -> None:
    app = make_app()
    with app.app_context():
        token = create_token(components(app).store, "ops")
    client = app.test_client()
    form = client.get("/ui/login", base_url="https://localhost")
    response = client.post(
        "/ui/login",
        base_url="https://localhost",
        data={"token": token, "csrf_token": csrf_of(form.text)},
    )
    assert "Secure" in response.headers["Set-Cookie"]

    proxied = make_app(trusted_proxies=("127.0.0.1/32",)).test_client()
    https = {"X-Forwarded-Proto": "https"}
    form = proxied.get("/ui/login", headers=https)
    response = proxied.post(
        "/ui/login", headers=https, data={"token": token, "csrf_token": csrf_of(form.text)}
    )
    assert "Secure" in response.headers["Set-Cookie"]
    # The same header from a peer that is not a trusted proxy proves nothing.
    form = client.get("/ui/login", headers=https)
    response = client.post(
        "/ui/login", headers=https, data={"token": token, "csrf_token": csrf_of(form.text)}
    )
    assert "Secure" not in response.headers["Set-Cookie"]

    forced = make_app(session_cookie_secure=True).test_client()
    form = forced.get("/ui/login")
    response = forced.post("/ui/login", data={"token": token, "csrf_token": csrf_of(form.text)})
    assert "Secure" in response.headers["Set-Cookie"]


def test_a_wrong_token_or_a_forged_sign_in_form_signs_nobody_in(
    client: FlaskClient, db: Database
) -> None:
    token = create_token(db, "ops")
    form = client.get("/ui/login")
    wrong = client.post("/ui/login", data={"token": "nope", "csrf_token": csrf_of(form.text)})
    assert wrong.status_code == 401
    assert "not valid" in wrong.text
    assert _session_cookie(client) is None
    # A sign-in posted from elsewhere carries no matching login CSRF token.
    fresh = client.application.test_client()
    forged = fresh.post("/ui/login", data={"token": token, "csrf_token": "guess"})
    assert forged.status_code == 403
    assert _session_cookie(fresh) is None


def test_next_only_follows_paths_inside_the_dashboard(client: FlaskClient, db: Database) -> None:
    token = create_token(db, "ops")
    for target in ("https://evil.example/", "//evil.example/ui", "/admin/triggers", "/uix"):
        form = client.get("/ui/login")
        response = client.post(
            "/ui/login", data={"token": token, "csrf_token": csrf_of(form.text), "next": target}
        )
        assert response.headers["Location"] == "/ui/", target


def test_repeated_failures_are_refused_for_a_while(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.routes.ui import auth

    monkeypatch.setattr(auth, "limiter", auth.SignInLimiter())
    for _ in range(auth.MAX_FAILURES):
        form = client.get("/ui/login")
        client.post("/ui/login", data={"token": "bad", "csrf_token": csrf_of(form.text)})
    form = client.get("/ui/login")
    response = client.post("/ui/login", data={"token": "x", "csrf_token": csrf_of(form.text)})
    assert response.status_code == 429


def test_behind_a_trusted_proxy_failures_count_per_browser(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every sign-in reaches the app from the proxy: one attacker must not lock out all."""
    from app.routes.ui import auth

    monkeypatch.setattr(auth, "limiter", auth.SignInLimiter())
    app = make_app(trusted_proxies=("127.0.0.1/32",))
    with app.app_context():
        token = create_token(get_db(), "ops")
    attacker, operator = app.test_client(), app.test_client()
    for _ in range(auth.MAX_FAILURES + 1):
        form = attacker.get("/ui/login")
        refused = attacker.post(
            "/ui/login",
            data={"token": "bad", "csrf_token": csrf_of(form.text)},
            headers={"X-Forwarded-For": "203.0.113.9"},
        )
    assert refused.status_code == 429
    form = operator.get("/ui/login")
    signed_in = operator.post(
        "/ui/login",
        data={"token": token, "csrf_token": csrf_of(form.text)},
        headers={"X-Forwarded-For": "198.51.100.7"},
    )
    assert signed_in.status_code == 303
    assert _session_cookie(operator) is not None


def test_the_limiter_forgets_successes_and_keeps_a_bounded_table() -> None:
    from app.routes.ui.auth import SignInLimiter

    limiter = SignInLimiter(max_failures=2, window_seconds=300, max_addresses=3)
    assert limiter.begin("a")
    limiter.succeeded("a")
    assert limiter.tracked() == 0  # a sign-in that worked leaves nothing behind
    assert limiter.begin("a") and limiter.begin("a")
    assert not limiter.begin("a")  # counted before the lookup: a third attempt is refused
    for address in ("b", "c", "d"):
        assert limiter.begin(address)
    assert limiter.tracked() == 3  # the stalest address ("a") made room
    assert limiter.begin("a")


def test_only_the_exact_login_path_is_open(client: FlaskClient) -> None:
    response = client.get("/ui/login-history")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/ui/login?")


def test_every_ui_response_has_the_security_headers(client: FlaskClient, db: Database) -> None:
    for path in ("/ui/login", "/ui/static/dashboard.css", "/ui/nope"):
        response = client.get(path)
        assert response.headers["Content-Security-Policy"] == CSP, path
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
        response.close()  # a static file is streamed from disk
    sign_in(client, create_token(db, "ops"))
    page = client.get("/ui/")
    assert page.headers["Content-Security-Policy"] == CSP
    assert page.headers["Cache-Control"] == "no-store"
    # No inline script or style anywhere: the CSP would block it.
    for path in ("/ui/", "/ui/login"):
        assert_no_inline_code(client.get(path).text, path)


def assert_no_inline_code(html: str, where: str) -> None:
    """No inline script, style or event handler: the CSP would block them."""
    assert not re.search(r"<script(?![^>]*\ssrc=)", html), where
    assert "<style" not in html and " style=" not in html, where
    assert not re.search(r"\son[a-z]+=", html), where


def ui_write_routes(app: Flask) -> list[tuple[str, str]]:
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/ui"):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"x-\1", rule.rule)
        routes.extend((method, path) for method in sorted((rule.methods or set()) & WRITE_METHODS))
    return routes


def test_logout_ends_the_session(client: FlaskClient, db: Database) -> None:
    token = create_token(db, "ops")
    csrf = sign_in(client, token)
    copied = _session_cookie(client)
    assert copied is not None
    other = client.application.test_client()  # another browser of the same token
    sign_in(other, token)
    response = client.post("/ui/logout", data={"csrf_token": csrf})
    assert response.status_code == 303
    assert _session_cookie(client) is None
    assert client.get("/ui/").status_code == 303
    # A copy of the signed-out cookie is refused as well, on pages and streams.
    thief = client.application.test_client()
    thief.set_cookie(sessions.COOKIE, copied, path=sessions.COOKIE_PATH)
    assert thief.get("/ui/").status_code == 303
    assert thief.get("/ui/stream").status_code == 401
    assert other.get("/ui/").status_code == 200  # only that session ended


def test_ended_sessions_are_forgotten_once_their_cookies_expire(
    make_app: Any, db: Database
) -> None:
    from app.store import ended_sessions

    ended_sessions.end(db, "a" * 64, expires_at="2000-01-01T00:00:00.000000Z")
    ended_sessions.end(db, "b" * 64, expires_at="2999-01-01T00:00:00.000000Z")
    assert ended_sessions.delete_expired(db) == 1
    assert not ended_sessions.is_ended(db, "a" * 64)
    assert ended_sessions.is_ended(db, "b" * 64)


def test_revoking_the_token_ends_its_sessions(client: FlaskClient, db: Database) -> None:
    token = create_token(db, "ops")
    sign_in(client, token)
    found = admin_tokens.find_active_token(db, digest(token))
    assert found is not None
    assert admin_tokens.revoke(db, found.id)
    assert client.get("/ui/").status_code == 303
    assert client.get("/ui/stream").status_code == 401


def test_sessions_expire(
    client: FlaskClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from itsdangerous import TimestampSigner

    sign_in(client, create_token(db, "ops"))
    assert client.get("/ui/").status_code == 200
    real = TimestampSigner.get_timestamp
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: real(self) + 43201)
    assert client.get("/ui/").status_code == 303


def test_a_tampered_cookie_is_no_session(client: FlaskClient, db: Database) -> None:
    sign_in(client, create_token(db, "ops"))
    value = _session_cookie(client)
    assert value
    client.set_cookie(sessions.COOKIE, value[:-2] + "xx", path="/ui")
    assert client.get("/ui/").status_code == 303


def test_workers_on_one_store_share_the_signing_key(make_app: Any) -> None:
    first, second = make_app(), make_app()
    with first.app_context():
        token = create_token(components(first).store, "ops")
    client = first.test_client()
    sign_in(client, token)
    other = second.test_client()
    other.set_cookie(sessions.COOKIE, _session_cookie(client) or "", path="/ui")
    assert other.get("/ui/").status_code == 200


def test_session_secret_setting_signs_cookies(make_app: Any) -> None:
    one = make_app(session_secret="one-secret-0123456789abcdef")
    two = make_app(session_secret="two-secret-0123456789abcdef")
    with one.app_context():
        token = create_token(components(one).store, "ops")
    client = one.test_client()
    sign_in(client, token)
    other = two.test_client()
    other.set_cookie(sessions.COOKIE, _session_cookie(client) or "", path="/ui")
    assert other.get("/ui/").status_code == 303


def test_admin_token_from_the_environment_signs_in(make_app: Any) -> None:
    app = make_app(admin_token="env-admin-token-0123456789abcdef")
    client = app.test_client()
    sign_in(client, "env-admin-token-0123456789abcdef")
    assert client.get("/ui/").status_code == 200
    value = _session_cookie(client) or ""
    assert "env-admin-token" not in value
    # The cookie's payload is readable (signed, not encrypted): no digest of the token in it.
    payload = base64.urlsafe_b64decode(value.split(".")[0] + "==").decode()
    assert digest("env-admin-token-0123456789abcdef")[:16] not in payload
    changed = make_app(admin_token="another-token-0123456789abcdef").test_client()
    changed.set_cookie(sessions.COOKIE, value, path="/ui")
    assert changed.get("/ui/").status_code == 303


def test_error_pages_share_the_layout_and_leak_nothing(
    app: Flask, client: FlaskClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_in(client, create_token(db, "ops"))
    missing = client.get("/ui/no/such/page")
    assert missing.status_code == 404
    assert missing.mimetype == "text/html"
    assert 'class="card narrow error-page"' in missing.text
    assert missing.headers["Content-Security-Policy"] == CSP

    def boom(*_: Any, **__: Any) -> dict[str, Any]:
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr("app.routes.ui.overview.summary", boom)
    broken = client.get("/ui/")
    assert broken.status_code == 500
    assert "Internal server error." in broken.text
    assert "secret internals" not in broken.text and "Traceback" not in broken.text
    # The API keeps its JSON envelope.
    api = client.get("/admin/executions/nope")
    assert api.status_code == 401 and api.get_json()["error"]["code"] == "unauthorized"


def test_the_bearer_api_does_not_accept_the_cookie(client: FlaskClient, db: Database) -> None:
    sign_in(client, create_token(db, "ops"))
    assert client.get("/admin/stream").status_code == 401
    assert client.get("/admin/triggers").status_code == 401


def test_a_post_without_the_csrf_token_is_refused(client: FlaskClient, db: Database) -> None:
    csrf = sign_in(client, create_token(db, "ops"))
    assert client.post("/ui/logout").status_code == 403
    assert client.post("/ui/logout", data={"csrf_token": csrf[::-1]}).status_code == 403
    assert client.get("/ui/").status_code == 200  # still signed in: nothing changed
    assert ("POST", "/ui/logout") in ui_write_routes(client.application)


def test_a_form_cut_short_is_refused_and_changes_nothing(client: FlaskClient, db: Database) -> None:
    csrf = sign_in(client, create_token(db, "ops"))
    body = f"csrf_token={csrf}".encode()
    response = client.post(
        "/ui/logout",
        data=body,
        content_type="application/x-www-form-urlencoded",
        # Declared but never sent, on a server that ends the input itself (as Gunicorn does).
        environ_overrides={"CONTENT_LENGTH": str(len(body) + 40), "wsgi.input_terminated": True},
    )
    assert response.status_code == 400
    assert client.get("/ui/").status_code == 200  # still signed in: the logout never ran
