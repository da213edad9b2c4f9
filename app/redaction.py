"""What must never be stored, logged or sent to Sentry verbatim."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "[redacted]"

# Credentials and signatures of every scheme Hookrunner knows, plus the usual suspects.
SENSITIVE_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-hub-signature",
        "x-hub-signature-256",
        "stripe-signature",
        "x-slack-signature",
        "webhook-signature",
        "svix-signature",
        "x-webhook-token",
        "x-gitlab-token",
        "x-shopify-hmac-sha256",
        "x-api-key",
    }
)


def is_sensitive_header(name: str, extra: Iterable[str] = ()) -> bool:
    lowered = name.lower()
    return (
        lowered in SENSITIVE_HEADERS
        or lowered in extra
        or "signature" in lowered
        or "token" in lowered
        or "secret" in lowered
    )


def redact_headers(
    headers: Mapping[str, str], extra: frozenset[str] = frozenset()
) -> dict[str, str]:
    """Lower-cased header names mapped to values, credentials replaced by a marker."""
    return {
        name.lower(): (REDACTED if is_sensitive_header(name, extra) else value)
        for name, value in headers.items()
    }


# Query-string parameters that carry credentials (compared lower-cased, "-" as "_").
SENSITIVE_QUERY_PARAMS = frozenset(
    {
        "token",
        "key",
        "secret",
        "signature",
        "sig",
        "access_token",
        "refresh_token",
        "id_token",
        "api_key",
        "apikey",
        "client_secret",
        "password",
        "passwd",
        "pwd",
        "auth",
        "authorization",
        "hmac",
        "session",
        "sessionid",
        "jwt",
    }
)
_SENSITIVE_QUERY_PARTS = ("token", "secret", "signature", "password")


def is_sensitive_query_param(name: str) -> bool:
    """Whether a query parameter's name says it carries a credential."""
    lowered = name.lower().replace("-", "_")
    return (
        lowered in SENSITIVE_QUERY_PARAMS
        or lowered.endswith("_key")
        or any(part in lowered for part in _SENSITIVE_QUERY_PARTS)
    )


def redact_query(query: Mapping[str, Any]) -> dict[str, Any]:
    """Query parameters (one value or a list each) with credential values replaced."""
    return {
        name: (
            ([REDACTED] * len(value) if isinstance(value, list) else REDACTED)
            if is_sensitive_query_param(name)
            else value
        )
        for name, value in query.items()
    }


def redacted_values(
    headers: Mapping[str, str], query: Mapping[str, Any], extra: frozenset[str] = frozenset()
) -> dict[str, dict[str, Any]]:
    """The values :func:`redact_headers` and :func:`redact_query` replace, by name.

    Kept apart from the redacted copies (never shown, never logged) for the one
    reader that needs them: an execution whose action templates read headers or
    the query.
    """
    return {
        "headers": {
            name.lower(): value
            for name, value in headers.items()
            if is_sensitive_header(name, extra)
        },
        "query": {name: value for name, value in query.items() if is_sensitive_query_param(name)},
    }


def redact_url(url: str) -> str:
    """``url`` with its user-info and credential query values replaced by the marker.

    Deterministic: the same URL always gives the same text, so a client that sends
    back what it was shown can be recognised (see ``app.triggers.schema.merge_patch``).
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = REDACTED + "@" + netloc.rpartition("@")[2]
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(is_sensitive_query_param(name) for name, _ in pairs):
        query = urlencode(
            [(name, REDACTED if is_sensitive_query_param(name) else v) for name, v in pairs],
            safe="[]",
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def url_credentials(url: str) -> list[str]:
    """The credential strings inside ``url`` (user-info, its password, query values)."""
    parts = urlsplit(url)
    found = []
    if "@" in parts.netloc:
        userinfo = parts.netloc.rpartition("@")[0]
        found.append(userinfo)
        found.extend(piece for piece in userinfo.split(":", 1)[1:] if piece)
    found.extend(
        value
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if value and is_sensitive_query_param(name)
    )
    return found
