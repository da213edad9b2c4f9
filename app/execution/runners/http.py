"""Forward a webhook over HTTP: the ``http`` action.

Contract:

* The request is rendered from the action (url, headers, optional body
  template); without a body template the original raw body is forwarded with
  its Content-Type (GET/DELETE send no body then). ``User-Agent: Hookrunner``
  (unless the action sets one) and ``X-Request-ID`` are added; with a
  ``signing_secret`` the Standard Webhooks headers are set. ``webhook-id`` is
  the delivery id (:func:`message_id`), so every attempt of one delivery's
  forward - retries and reruns alike - carries the same id and receivers can
  deduplicate; a replay is a new delivery and so a new message. The secret is
  base64 after an optional ``whsec_`` prefix, as the spec says; a secret that
  is not valid base64 is used as its UTF-8 bytes (receivers must then use the
  raw bytes as the key).
* It goes out through :mod:`app.outbound.client` (non-global peers refused
  unless ``ALLOW_PRIVATE_TARGETS=1``, no redirects, timeout, capped body) and
  the destination's circuit breaker: connection errors, timeouts, 5xx and 429
  count as breaker failures; an open breaker fails fast without any I/O.
* Results: 2xx succeeded; 3xx, 4xx other than 408/429, refused addresses and
  template errors fail without retry; everything else fails retryably.
* Never shown, stored or logged: the signing secret, request headers, and URL
  text equal to a trigger secret (masked) or URL user-info.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from typing import Any

import pybreaker
from urllib3 import HTTPHeaderDict
from urllib3.exceptions import HTTPError, LocationParseError, NewConnectionError
from urllib3.util import Url, make_headers, parse_url

from app.execution.runners.base import RunContext, RunResult
from app.outbound import client as outbound
from app.outbound.breakers import destination_of
from app.redaction import REDACTED
from app.triggers.schema import HttpAction
from app.triggers.templates import TemplateRenderError, mask_secrets, render_http

_BREAKER_FAILURES = (HTTPError, OSError)


class UnhealthyResponse(Exception):
    """A 5xx or 429 answer: raised inside the breaker so it counts as a failure."""

    def __init__(self, response: outbound.OutboundResponse) -> None:
        super().__init__(f"HTTP {response.status}")
        self.response = response


def signing_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret (``whsec_<base64>``, or raw text)."""
    text = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    return key or secret.encode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(
        signing_key(secret), f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256
    )
    return "v1," + base64.b64encode(mac.digest()).decode()


def message_id(ctx: RunContext) -> str:
    """The Standard Webhooks ``webhook-id``: one per delivery, the same on every attempt.

    An execution whose delivery is gone (none is stored) uses its own id.
    """
    return ctx.delivery_id or ctx.execution_id


def _shown_url(url: Url, secrets: list[str]) -> str:
    shown = url._replace(auth=REDACTED) if url.auth else url
    return str(mask_secrets(shown.url, secrets))


def _latin1(value: str) -> bool:
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


_OWN_HEADERS = frozenset({"x-request-id", "webhook-id", "webhook-timestamp", "webhook-signature"})


def _build_headers(
    action: HttpAction, ctx: RunContext, rendered: dict[str, str], url: Url, body: bytes | None
) -> HTTPHeaderDict:
    headers = HTTPHeaderDict({"User-Agent": "Hookrunner"})  # case-insensitive, set replaces
    if action.body is None and body is not None and ctx.content_type:
        headers["Content-Type"] = ctx.content_type
    if url.auth:
        headers.update(make_headers(basic_auth=url.auth))
    for name, value in rendered.items():
        if "\r" in value or "\n" in value or not _latin1(value):
            raise TemplateRenderError(f"header {name}: line break or non-Latin-1 text")
        if name.lower() not in _OWN_HEADERS:
            headers[name] = value
    if ctx.request_id:
        headers["X-Request-ID"] = ctx.request_id
    if action.signing_secret:
        timestamp = int(time.time())
        headers["webhook-id"] = message_id(ctx)
        headers["webhook-timestamp"] = str(timestamp)
        headers["webhook-signature"] = sign(
            action.signing_secret, message_id(ctx), timestamp, body or b""
        )
    return headers


def _reason(exc: BaseException) -> str:
    """The useful part of a urllib3/socket error (no object reprs, no pool prefix)."""
    if isinstance(exc, NewConnectionError) and exc.__cause__ is not None:
        return str(exc.__cause__)  # e.g. "[Errno 111] Connection refused"
    text = str(exc.args[-1]) if exc.args else type(exc).__name__
    return text.split("): ", 1)[-1] if text.startswith("HTTP") and "Pool(" in text else text


def _failed(error: str, details: dict[str, Any], retryable: bool) -> RunResult:
    return RunResult("failed", error=error, details=details, retryable=retryable)


def run_http(action: HttpAction, ctx: RunContext) -> RunResult:
    try:
        rendered = render_http(action, ctx.template_context)
        url = parse_url(rendered["url"])
        if url.scheme not in ("http", "https") or not url.host:
            raise TemplateRenderError("url must render to an absolute http(s) URL")
        method: str = rendered["method"]
        body: bytes | None = None
        if rendered["body"] is not None:
            body = str(rendered["body"]).encode()
        elif method not in ("GET", "DELETE"):
            body = ctx.raw_body
        headers = _build_headers(action, ctx, rendered["headers"], url, body)
    except (TemplateRenderError, LocationParseError) as exc:
        return _failed(str(mask_secrets(str(exc), ctx.secrets)), {}, retryable=False)

    shown = _shown_url(url, ctx.secrets)
    host = url.netloc  # host[:port], never the user-info
    info: dict[str, Any] = {"method": method, "url": shown, "status": None}
    info.update(elapsed_ms=None, response_bytes=0, truncated=False)
    details = {"http": info}
    if ctx.cancelled.is_set():
        return RunResult("cancelled", details=details, retryable=False)

    breaker = ctx.breakers.get(destination_of(rendered["url"]))
    allow_private = ctx.settings.allow_private_targets

    def send() -> outbound.OutboundResponse:
        response = outbound.request(
            method,
            url._replace(auth=None).url,
            headers=headers,
            body=body,
            timeout=action.timeout_seconds,
            max_response_bytes=action.max_response_bytes,
            allow_private=allow_private,
        )
        if response.status >= 500 or response.status == 429:
            raise UnhealthyResponse(response)
        return response

    started = time.monotonic()
    try:
        response = breaker.guard(send, failures=(*_BREAKER_FAILURES, UnhealthyResponse))
    except UnhealthyResponse as exc:
        response = exc.response
    except pybreaker.CircuitBreakerError as exc:
        ctx.output.system(f"{method} {shown} -> not sent: circuit breaker open")
        return _failed(f"circuit breaker open for {host}: {exc}", details, retryable=True)
    except outbound.PrivateAddressRefused as exc:
        ctx.output.system(f"{method} {shown} -> refused: {exc.address} is not global")
        error = (
            f"refused to connect to {host} ({exc.address}): not a global address; "
            "ALLOW_PRIVATE_TARGETS=1 allows private targets"
        )
        return _failed(error, details, retryable=False)
    except ValueError as exc:  # a request http.client will not send; not the destination's fault
        return _failed(f"invalid request: {mask_secrets(str(exc), ctx.secrets)}", details, False)
    except _BREAKER_FAILURES as exc:
        info["elapsed_ms"] = round((time.monotonic() - started) * 1000)
        reason = str(mask_secrets(_reason(exc), ctx.secrets))[:300]
        ctx.output.system(f"{method} {shown} -> {type(exc).__name__} ({info['elapsed_ms']} ms)")
        return _failed(f"{type(exc).__name__} from {host}: {reason}", details, retryable=True)

    elapsed_ms = round((time.monotonic() - started) * 1000)
    info.update(status=response.status, elapsed_ms=elapsed_ms)
    info.update(response_bytes=len(response.body), truncated=response.truncated)
    ctx.output.system(f"{method} {shown} -> {response.status} ({elapsed_ms} ms)")
    for line in response.body.decode("utf-8", errors="replace").splitlines():
        ctx.output.line("stdout", line)
    if response.truncated:
        ctx.output.system(f"response truncated at {action.max_response_bytes} bytes")

    status = response.status
    if 200 <= status < 300:
        return RunResult("succeeded", details=details)
    error = f"HTTP {status} from {shown}"
    if 300 <= status < 400:
        location = mask_secrets(response.headers.get("location", "?"), ctx.secrets)
        return _failed(
            f"{error}: redirects are not followed (Location: {location})", details, False
        )
    retryable = status >= 500 or status in (408, 429)
    return _failed(error, details, retryable)
