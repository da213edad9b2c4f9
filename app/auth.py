"""Bearer-token guard for everything under ``/admin``.

Tokens are random (32 bytes, URL-safe), shown once by ``hookrunner
create-token`` and stored only as SHA-256. ``ADMIN_TOKEN`` from the environment
is accepted too. The guard is an app-wide ``before_request`` keyed on the path,
so no admin route - present or future, existing or not - answers without a
valid token: unknown admin paths are 401 as well, not 404.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import Flask, current_app, request

from app.errors import Unauthorized
from app.store import Database, admin_tokens, get_db

ADMIN_PREFIX = "/admin"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(db: Database, name: str) -> str:
    """Store a new token's digest and return the token itself (shown once)."""
    token = new_token()
    admin_tokens.insert(db, name, digest(token))
    return token


def is_valid_token(token: str) -> bool:
    env_token: str | None = current_app.config["SETTINGS"].admin_token
    if env_token and hmac.compare_digest(token.encode(), env_token.encode()):
        return True
    return admin_tokens.find_active(get_db(), digest(token)) is not None


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _require_admin_token() -> None:
    path = request.path
    if not (path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")):
        return
    token = _bearer_token()
    if token is None or not is_valid_token(token):
        raise Unauthorized(headers={"WWW-Authenticate": 'Bearer realm="hookrunner"'})


def init_app(app: Flask) -> None:
    app.before_request(_require_admin_token)
