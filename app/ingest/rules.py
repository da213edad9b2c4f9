"""Evaluate a trigger's ``rules`` tree (:mod:`app.triggers.rules_schema`) on a request.

Runs at ingest, after the body is parsed and before anything is recorded. The
outcome is one of:

* ``matched``: the request goes on to the filter and dedup;
* ``mismatch``: recorded as an ignored delivery (reason ``rules_mismatch``);
* ``signature_invalid``: a signature match (``hmac-*``, ``scalr``) found its
  header but the signature was wrong or its date stale. Like a failed
  ``auth`` check, nothing is stored. Inside an ``or`` with
  ``soft_signature_failures`` such a failure only makes that branch false.

A match whose source is absent (no such header, field or parameter) is false;
it never raises. Signatures are compared in constant time over the raw bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from app.triggers.fields import MISSING, as_text, lookup
from app.triggers.regex import compile_regex

Outcome = Literal["matched", "mismatch", "signature_invalid"]
SCALR_DATE_TOLERANCE_SECONDS = 300
_ALGORITHMS = {"hmac-sha1": "sha1", "hmac-sha256": "sha256", "hmac-sha512": "sha512"}


@dataclass(frozen=True)
class RuleInput:
    """The request as rules read it; ``headers`` keys are lower-case."""

    method: str
    remote_addr: str | None
    headers: dict[str, str]
    query: dict[str, Any]
    body: Any
    raw: bytes


class _SignatureFailure(Exception):
    pass


def source_value(source: str, request: RuleInput) -> Any:
    """The value ``source`` names in ``request`` (:data:`MISSING` when absent)."""
    kind, _, name = source.partition(":")
    if kind == "header":
        return request.headers.get(name.lower(), MISSING)
    if kind == "query":
        value = request.query.get(name, MISSING)
        return value[0] if isinstance(value, list) and value else value
    if kind == "payload":
        return lookup(request.body, name)
    if kind == "string":
        return name
    plain: dict[str, Any] = {
        "raw_body": request.raw.decode("utf-8", errors="replace"),
        "method": request.method,
        "remote_addr": request.remote_addr if request.remote_addr else MISSING,
        "body": request.body,
        "headers": request.headers,
        "query": request.query,
    }
    return plain.get(source, MISSING)


def signatures_in(header: str, prefix: str) -> list[str]:
    """Signatures in a header value: ``<hex>``, ``<prefix><hex>``, or a comma-separated list."""
    if "," not in header:
        return [header.removeprefix(prefix)]
    found = []
    for item in header.split(","):
        item = item.strip()
        if item.startswith(prefix):
            found.append(item[len(prefix) :])
    return found


def _hmac_matches(kind: str, secret: str, header: str, raw: bytes) -> bool:
    algorithm = _ALGORITHMS[kind]
    expected = hmac.new(secret.encode(), raw, algorithm).hexdigest()
    candidates = signatures_in(header, f"{algorithm}=")
    matched = False
    for candidate in candidates:  # compare every one: no early exit to time
        matched |= hmac.compare_digest(candidate.encode(), expected.encode())
    return matched


def _scalr(secret: str, request: RuleInput) -> bool:
    signature = request.headers.get("x-signature")
    date = request.headers.get("date")
    if signature is None or date is None:
        return False
    mac = hmac.new(secret.encode(), request.raw + date.encode(), hashlib.sha1).hexdigest()
    if not hmac.compare_digest(signature.encode(), mac.encode()):
        raise _SignatureFailure()
    try:  # Scalr's format: "Fri 08 Sep 2017 11:24:32 UTC"
        sent = datetime.strptime(date.replace("UTC", "+0000"), "%a %d %b %Y %H:%M:%S %z")
    except ValueError:
        raise _SignatureFailure() from None
    if abs(time.time() - sent.timestamp()) > SCALR_DATE_TOLERANCE_SECONDS:
        raise _SignatureFailure()
    return True


def _in_ranges(address: str | None, cidrs: list[str]) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _match(match: dict[str, Any], request: RuleInput) -> bool:
    kind = match["type"]
    if kind == "ip":
        return _in_ranges(request.remote_addr, match["cidrs"])
    if kind == "scalr":
        return _scalr(match["secret"], request)
    value = source_value(match["source"], request)
    if value is MISSING:
        return False
    text = as_text(value)
    if kind == "value":
        return hmac.compare_digest(text.encode(), str(match["value"]).encode())
    if kind == "regex":
        return compile_regex(match["regex"]).search(text)
    if not _hmac_matches(kind, match["secret"], text, request.raw):
        raise _SignatureFailure()
    return True


def _evaluate(node: dict[str, Any], request: RuleInput) -> bool:
    if "match" in node:
        return _match(node["match"], request)
    if "not" in node:
        return not _evaluate(node["not"], request)
    if "and" in node:
        return all(_evaluate(child, request) for child in node["and"])
    soft = bool(node.get("soft_signature_failures"))
    result = False
    for child in node["or"]:
        try:
            result = _evaluate(child, request) or result
        except _SignatureFailure:
            if not soft:
                raise
    return result


def evaluate(rules: dict[str, Any] | None, request: RuleInput) -> Outcome:
    """The outcome of ``rules`` for ``request`` (``matched`` when there are none)."""
    if rules is None:
        return "matched"
    try:
        return "matched" if _evaluate(rules, request) else "mismatch"
    except _SignatureFailure:
        return "signature_invalid"
