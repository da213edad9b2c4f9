"""Helpers for the dashboard tests: sign in through the form, read CSRF tokens from pages."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no csrf_token field in the page"
    return found.group(1)


def sign_in(client: FlaskClient, token: str) -> str:
    """Sign in with ``token`` through /ui/login; returns the session's CSRF token."""
    form = client.get("/ui/login")
    response = client.post(
        "/ui/login", data={"token": token, "csrf_token": csrf_of(form.text), "next": ""}
    )
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/ui/").text)
