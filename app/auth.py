"""Bearer-token guard for everything under ``/admin``.

Tokens are random (32 bytes, URL-safe), shown once by ``hookrunner
create-token`` and stored only as SHA-256. ``ADMIN_TOKEN`` from the environment
is accepted too (with the ``admin`` role). The guard is an app-wide
``before_request`` keyed on the path, so no admin route - present or future,
existing or not - answers without a valid token: unknown admin paths are 401 as
well, not 404.

Roles are enforced in the same place, keyed on the HTTP method: a ``viewer``
token may only read (``GET``, ``HEAD``, ``OPTIONS``); anything else is 403
``forbidden`` before the route runs, so a new write route is covered without
doing anything. The caller's role is on ``g.token_role``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import Flask, current_app, g, request

from app.errors import Forbidden, Unauthorized
from app.store import Database, admin_tokens, get_db
from app.store.admin_tokens import Role

ADMIN_PREFIX = "/admin"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def new_token() -> str:
    return secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(db: Database, name: str, role: Role = "admin") -> str:
    """Store a new token's digest and return the token itself (shown once)."""
    token = new_token()
    admin_tokens.insert(db, name, digest(token), role)
    return token


def token_role(token: str) -> Role | None:
    """The role of a valid token (``ADMIN_TOKEN`` is admin), None for an invalid one."""
    env_token: str | None = current_app.config["SETTINGS"].admin_token
    if env_token and hmac.compare_digest(token.encode(), env_token.encode()):
        return "admin"
    found = admin_tokens.find_active_token(get_db(), digest(token))
    return found.role if found else None


def is_valid_token(token: str) -> bool:
    return token_role(token) is not None


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
    role = token_role(token) if token is not None else None
    if role is None:
        raise Unauthorized(headers={"WWW-Authenticate": 'Bearer realm="hookrunner"'})
    g.token_role = role
    if role == "viewer" and request.method not in READ_METHODS:
        raise Forbidden("A viewer token may only read.")


def init_app(app: Flask) -> None:
    app.before_request(_require_admin_token)
