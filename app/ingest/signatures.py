"""Authenticate inbound webhooks (docs/architecture.md, "The request path", step 3).

Contract:

* Every MAC is computed over the **raw request body bytes** exactly as received, never over
  re-serialised JSON.
* Comparisons use :func:`hmac.compare_digest` over bytes. Every configured secret is tried
  against every candidate signature with no early exit (tokens are compared as SHA-256
  digests, so their length does not leak either).
* Rotation: ``AuthSpec.secrets`` holds every active secret; any one matching is accepted and
  :attr:`Verification.secret_index` names the first one that matched. Empty secrets never
  match; a scheme other than ``none`` with no secrets at all fails with ``signature_invalid``.
* Timestamps (stripe, slack, standard) are integer Unix seconds and the request fails with
  ``timestamp_out_of_tolerance`` when ``|now - t| > tolerance_seconds``. The timestamp is
  checked only **after** a MAC matched, so an unauthenticated caller only ever sees
  ``signature_missing`` / ``signature_invalid``; a correctly signed but stale (replayed) or
  future-dated request gets ``timestamp_out_of_tolerance``.
* A required header absent (or empty) -> ``signature_missing``; present but malformed or not
  matching -> ``signature_invalid``.
* Error messages never contain a received or computed MAC, a token or a secret, and no error
  is raised while handling another exception (no chained context carrying header values).
* Configuration mistakes (unknown scheme, hmac algorithm or encoding) raise ``ValueError``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from app.errors import SignatureInvalid, SignatureMissing, TimestampOutOfTolerance

SCHEMES: frozenset[str] = frozenset(
    {"github", "stripe", "slack", "standard", "hmac", "token", "none"}
)
HMAC_ALGORITHMS: frozenset[str] = frozenset({"sha1", "sha256", "sha512"})
HMAC_ENCODINGS: frozenset[str] = frozenset({"hex", "base64"})
DEFAULT_TOKEN_HEADER = "X-Webhook-Token"  # noqa: S105 (a header name, not a secret)

_TIMESTAMP = re.compile(r"[0-9]{1,15}")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
_B64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


class HeaderLookup(Protocol):
    """What ``verify`` needs of headers: werkzeug ``Headers`` or a dict with lower-cased keys."""

    def get(self, key: str, /) -> str | None: ...


@dataclass(frozen=True)
class AuthSpec:
    scheme: str
    secrets: tuple[str, ...] = ()
    tolerance_seconds: int = 300
    header: str | None = None
    algorithm: str = "sha256"
    encoding: str = "hex"
    prefix: str = ""


@dataclass(frozen=True)
class Verification:
    scheme: str
    secret_index: int | None
    signed_id: str | None


Verifier = Callable[[AuthSpec, HeaderLookup, bytes, float], Verification]


def _header(headers: HeaderLookup, name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    return value or None


def _require(headers: HeaderLookup, name: str) -> str:
    value = _header(headers, name)
    if value is None:
        raise SignatureMissing(f"The {name} header is missing.")
    return value


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _from_hex(value: str) -> bytes | None:
    return bytes.fromhex(value) if _HEX.fullmatch(value) else None


def _from_b64(value: str) -> bytes | None:
    if not _B64.fullmatch(value):
        return None
    core = value.rstrip("=")
    if len(core) % 4 == 1:
        return None
    return base64.b64decode(core + "=" * (-len(core) % 4), validate=True)


def _keys(spec: AuthSpec) -> list[bytes | None]:
    return [_utf8(secret) if secret else None for secret in spec.secrets]


def _match(
    keys: Sequence[bytes | None],
    candidates: Sequence[bytes],
    sign: Callable[[bytes], bytes],
) -> int:
    """Index of the first key whose MAC equals any candidate; tries every pair."""
    matched: int | None = None
    for index, key in enumerate(keys):
        expected = sign(key or b"")
        for candidate in candidates:
            if hmac.compare_digest(expected, candidate) and key and matched is None:
                matched = index
    if matched is None:
        raise SignatureInvalid()
    return matched


def _sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _timestamp(value: str) -> str:
    if not _TIMESTAMP.fullmatch(value):
        raise SignatureInvalid("The signed timestamp is malformed.")
    return value


def _check_tolerance(timestamp: str, spec: AuthSpec, now: float) -> None:
    if abs(now - int(timestamp)) > spec.tolerance_seconds:
        raise TimestampOutOfTolerance()


def _verify_github(spec: AuthSpec, headers: HeaderLookup, body: bytes, now: float) -> Verification:
    value = _require(headers, "X-Hub-Signature-256")
    received = _from_hex(value[len("sha256=") :]) if value.startswith("sha256=") else None
    candidates = [received] if received else []
    index = _match(_keys(spec), candidates, lambda key: _sha256(key, body))
    return Verification("github", index, None)


def _verify_stripe(spec: AuthSpec, headers: HeaderLookup, body: bytes, now: float) -> Verification:
    value = _require(headers, "Stripe-Signature")
    stamps: list[str] = []
    candidates: list[bytes] = []
    for item in value.split(","):
        name, _, field = item.strip().partition("=")
        if name == "t":
            stamps.append(field)
        elif name == "v1" and (received := _from_hex(field)):
            candidates.append(received)
    if len(stamps) != 1 or not candidates:
        raise SignatureInvalid("The Stripe-Signature header is malformed.")
    stamp = _timestamp(stamps[0])
    signed = stamp.encode() + b"." + body
    index = _match(_keys(spec), candidates, lambda key: _sha256(key, signed))
    _check_tolerance(stamp, spec, now)
    return Verification("stripe", index, None)


def _verify_slack(spec: AuthSpec, headers: HeaderLookup, body: bytes, now: float) -> Verification:
    value = _require(headers, "X-Slack-Signature")
    stamp = _timestamp(_require(headers, "X-Slack-Request-Timestamp"))
    received = _from_hex(value[len("v0=") :]) if value.startswith("v0=") else None
    signed = b"v0:" + stamp.encode() + b":" + body
    index = _match(_keys(spec), [received] if received else [], lambda k: _sha256(k, signed))
    _check_tolerance(stamp, spec, now)
    return Verification("slack", index, None)


def _standard_key(secret: str) -> bytes | None:
    return _from_b64(secret.removeprefix("whsec_")) or None


def _verify_standard(
    spec: AuthSpec, headers: HeaderLookup, body: bytes, now: float
) -> Verification:
    svix = _header(headers, "webhook-signature") is None and _header(headers, "svix-signature")
    prefix = "svix-" if svix else "webhook-"
    value = _require(headers, prefix + "signature")
    msg_id = _require(headers, prefix + "id")
    stamp = _timestamp(_require(headers, prefix + "timestamp"))
    candidates: list[bytes] = []
    for entry in value.split():
        version, _, field = entry.partition(",")
        if version == "v1" and (received := _from_b64(field)):
            candidates.append(received)
    signed = _utf8(f"{msg_id}.{stamp}.") + body
    keys = [_standard_key(secret) for secret in spec.secrets]
    index = _match(keys, candidates, lambda key: _sha256(key, signed))
    _check_tolerance(stamp, spec, now)
    return Verification("standard", index, msg_id)


def _verify_hmac(spec: AuthSpec, headers: HeaderLookup, body: bytes, now: float) -> Verification:
    if not spec.header:
        raise SignatureInvalid("No signature header is configured for this trigger.")
    value = _require(headers, spec.header)
    received: bytes | None = None
    if value.startswith(spec.prefix):
        raw = value[len(spec.prefix) :]
        received = _from_hex(raw) if spec.encoding == "hex" else _from_b64(raw)

    def sign(key: bytes) -> bytes:
        return hmac.new(key, body, spec.algorithm).digest()

    index = _match(_keys(spec), [received] if received else [], sign)
    return Verification("hmac", index, None)


def _verify_token(spec: AuthSpec, headers: HeaderLookup, body: bytes, now: float) -> Verification:
    token = _require(headers, spec.header or DEFAULT_TOKEN_HEADER)
    received = hashlib.sha256(_utf8(token)).digest()
    index = _match(_keys(spec), [received], lambda key: hashlib.sha256(key).digest())
    return Verification("token", index, None)


def _verify_none(spec: AuthSpec, headers: HeaderLookup, body: bytes, now: float) -> Verification:
    return Verification("none", None, None)


_VERIFIERS: dict[str, Verifier] = {
    "github": _verify_github,
    "stripe": _verify_stripe,
    "slack": _verify_slack,
    "standard": _verify_standard,
    "hmac": _verify_hmac,
    "token": _verify_token,
    "none": _verify_none,
}


def verify(
    spec: AuthSpec, headers: HeaderLookup, body: bytes, *, now: float | None = None
) -> Verification:
    """Raise SignatureMissing / SignatureInvalid / TimestampOutOfTolerance, or return what matched.

    ``ValueError`` means the spec itself is wrong (unknown scheme, hmac algorithm or encoding).
    """
    verifier = _VERIFIERS.get(spec.scheme)
    if verifier is None:
        raise ValueError(f"unknown auth scheme {spec.scheme!r}")
    if spec.scheme == "hmac" and (
        spec.algorithm not in HMAC_ALGORITHMS or spec.encoding not in HMAC_ENCODINGS
    ):
        raise ValueError("unsupported hmac algorithm or encoding")
    if spec.scheme != "none" and not spec.secrets:
        raise SignatureInvalid("No secret is configured for this trigger.")
    return verifier(spec, headers, body, time.time() if now is None else now)


_CREDENTIAL_HEADERS: dict[str, frozenset[str]] = {
    "github": frozenset({"x-hub-signature-256", "x-hub-signature"}),
    "stripe": frozenset({"stripe-signature"}),
    "slack": frozenset({"x-slack-signature"}),
    "standard": frozenset({"webhook-signature", "svix-signature"}),
    "none": frozenset(),
}


def signature_header_names(spec: AuthSpec) -> frozenset[str]:
    """Lower-cased names of the headers that carry credentials for this spec (to redact)."""
    if spec.scheme == "hmac":
        return frozenset({spec.header.lower()}) if spec.header else frozenset()
    if spec.scheme == "token":
        return frozenset({(spec.header or DEFAULT_TOKEN_HEADER).lower()})
    if spec.scheme not in _CREDENTIAL_HEADERS:
        raise ValueError(f"unknown auth scheme {spec.scheme!r}")
    return _CREDENTIAL_HEADERS[spec.scheme]
