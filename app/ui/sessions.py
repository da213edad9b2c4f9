"""Dashboard sessions: a signed, expiring cookie that names a token, never holds one.

Signing in with an admin or viewer token sets ``hookrunner_session`` (path
``/ui``, ``HttpOnly``, ``SameSite=Strict``; ``Secure`` over HTTPS, behind a
proxy in ``TRUSTED_PROXIES`` that says ``X-Forwarded-Proto: https``, or with
``SESSION_COOKIE_SECURE=1``). Its value is signed with itsdangerous and holds
the token's id (never the token), a per-session CSRF token and the sign-in
time; it expires after ``SESSION_MAX_AGE_SECONDS``. Every request re-checks
that the token still exists and is not revoked, and takes its role from the
store, so revoking a token ends its sessions on every worker and host at once.
``ADMIN_TOKEN`` signs in as ``env:<HMAC of the token under the signing key>``,
valid while the variable holds the same token. Signing out clears the cookie and
records the session as ended in the store (``ended_sessions``, by the digest of the
session's own random token), so a copy of the cookie stops working everywhere too.

The signing key is ``SESSION_SECRET``; unset, one random key is made on first
use and kept in the store (``server_secrets``), so every worker and host sharing
the store accept each other's cookies.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Flask, Response, current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from app.auth import digest
from app.clock import to_iso
from app.config import Settings
from app.ingest.client_address import in_networks, parse_address, parse_networks
from app.store import Database, admin_tokens, ended_sessions, server_secrets
from app.store.admin_tokens import Role

COOKIE = "hookrunner_session"
COOKIE_PATH = "/ui"
LOGIN_COOKIE = "hookrunner_login"  # the sign-in form's own CSRF token (double submit)
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
_SALT = "hookrunner.ui.session"
_SECRET_NAME = "ui_session_secret"  # noqa: S105 - the name of a stored key, not a key
_EXTENSION = "hookrunner.ui_sessions"
_ENV_PREFIX = "env:"


@dataclass(frozen=True)
class Session:
    token_id: str
    role: Role
    csrf: str
    signed_in_at: int

    @property
    def digest(self) -> str:
        """What names this session in the store (its random token's SHA-256, like a token's)."""
        return digest(self.csrf)


class SessionSigner:
    """Signs and checks session cookies for one app (the key is fetched once)."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self._serializer: URLSafeTimedSerializer | None = None

    @property
    def serializer(self) -> URLSafeTimedSerializer:
        if self._serializer is None:
            key = self.settings.session_secret or server_secrets.get_or_create(
                self.db, _SECRET_NAME
            )
            self._serializer = URLSafeTimedSerializer(key, salt=_SALT)
        return self._serializer

    def env_token_id(self, token: str) -> str:
        """The id a session records for ``ADMIN_TOKEN``: keyed with the signing key, so
        the readable cookie says nothing about the token (unlike a plain digest would)."""
        key = self.settings.session_secret or server_secrets.get_or_create(self.db, _SECRET_NAME)
        mac = hmac.new(key.encode(), token.encode(), hashlib.sha256).hexdigest()
        return _ENV_PREFIX + mac[:32]

    def token_id_for(self, token: str) -> str | None:
        """The id a session records for a valid token (None for an invalid one)."""
        env_token = self.settings.admin_token
        if env_token and hmac.compare_digest(token.encode(), env_token.encode()):
            return self.env_token_id(env_token)
        found = admin_tokens.find_active_token(self.db, digest(token))
        return found.id if found else None

    def new_cookie(self, token_id: str) -> str:
        payload = {"t": token_id, "c": secrets.token_urlsafe(24), "at": int(time.time())}
        return self.serializer.dumps(payload)

    def load(self, value: str | None) -> Session | None:
        """The session a cookie value stands for, or None (bad, expired, token revoked)."""
        if not value:
            return None
        try:
            payload = self.serializer.loads(value, max_age=self.settings.session_max_age_seconds)
        except BadSignature:  # includes SignatureExpired
            return None
        if not isinstance(payload, dict):
            return None
        token_id, csrf, at = payload.get("t"), payload.get("c"), payload.get("at")
        if not (isinstance(token_id, str) and isinstance(csrf, str) and isinstance(at, int)):
            return None
        role = self._role_of(token_id)
        if role is None:
            return None
        session = Session(token_id, role, csrf, at)
        return None if ended_sessions.is_ended(self.db, session.digest) else session

    def end(self, session: Session) -> None:
        """Sign ``session`` out on every worker and host, until its cookie would expire."""
        expires = session.signed_in_at + self.settings.session_max_age_seconds + 1
        ended_sessions.end(self.db, session.digest, to_iso(datetime.fromtimestamp(expires, tz=UTC)))

    def _role_of(self, token_id: str) -> Role | None:
        if token_id.startswith(_ENV_PREFIX):
            env_token = self.settings.admin_token
            if env_token and hmac.compare_digest(self.env_token_id(env_token), token_id):
                return "admin"
            return None
        found = admin_tokens.find_by_id(self.db, token_id)
        return found.role if found else None


def signer(app: Flask | None = None) -> SessionSigner:
    target = app if app is not None else current_app
    found: SessionSigner = target.extensions[_EXTENSION]
    return found


def init_app(app: Flask, db: Database, settings: Settings) -> None:
    app.extensions[_EXTENSION] = SessionSigner(db, settings)


def cookie_secure(settings: Settings) -> bool:
    """HTTPS: the request itself, or ``X-Forwarded-Proto: https`` from a trusted proxy."""
    if settings.session_cookie_secure or request.is_secure:
        return True
    if request.headers.get("X-Forwarded-Proto", "").strip().lower() != "https":
        return False
    peer = parse_address(request.remote_addr or "")
    return peer is not None and in_networks(peer, parse_networks(settings.trusted_proxies))


def set_session_cookie(response: Response, value: str, settings: Settings) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=settings.session_max_age_seconds,
        path=COOKIE_PATH,
        secure=cookie_secure(settings),
        httponly=True,
        samesite="Strict",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        COOKIE, path=COOKIE_PATH, secure=cookie_secure(settings), httponly=True, samesite="Strict"
    )


def csrf_matches(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())
