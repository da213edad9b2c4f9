"""What must never be stored, logged or sent to Sentry verbatim."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

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
