"""Webhook's ``trigger-rule`` as Hookrunner rules (see app.triggers.rules_schema).

Contract: :func:`_rule` converts the rule tree (``and``, ``or``, ``not``,
``match``; when several are set, the one webhook reads; empty rules and lists
behave as in webhook), with ``trigger-signature-soft-failures`` carried onto
``or`` nodes; :func:`_has_or` says whether a tree has one. Match types: value,
regex, the payload HMACs (and their deprecated payload-hash names),
ip-whitelist and scalr-signature; anything else is :class:`_Unconvertible`.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from app.triggers.hooks_import.parameters import _rule_source
from app.triggers.hooks_import.scalars import _scalar, _Unconvertible
from app.triggers.regex import RegexError, compile_regex

_HMAC_TYPES = {
    "payload-hmac-sha1": "hmac-sha1",
    "payload-hmac-sha256": "hmac-sha256",
    "payload-hmac-sha512": "hmac-sha512",
    "payload-hash-sha1": "hmac-sha1",
    "payload-hash-sha256": "hmac-sha256",
    "payload-hash-sha512": "hmac-sha512",
}
_ALWAYS = {"match": {"type": "value", "source": "string:", "value": ""}}


def _rule(node: Any, where: str, soft: bool, notes: list[str]) -> dict[str, Any]:
    """A webhook rule as a Hookrunner rules node (see app.triggers.rules_schema)."""
    if not isinstance(node, dict):
        raise _Unconvertible(f"{where}: a rule must be a mapping")
    for key in ("and", "or", "not", "match"):  # webhook's order when several are set
        if node.get(key) is not None:
            break
    else:
        notes.append(f"{where}: an empty rule never matches (as in webhook)")
        return {"not": _ALWAYS}
    extra = set(node) - {"and", "or", "not", "match"}
    if extra or len([k for k in node if node[k] is not None]) > 1:
        notes.append(f"{where}: only {key!r} is read (webhook ignores the other keys too)")
    value = node[key]
    if key in ("and", "or"):
        if not isinstance(value, list):
            raise _Unconvertible(f"{where}.{key}: needs a list of rules")
        if not value:
            notes.append(f"{where}.{key}: an empty list is {key == 'and'} (as in webhook)")
            return _ALWAYS if key == "and" else {"not": _ALWAYS}
        children = [
            _rule(child, f"{where}.{key}[{i}]", soft, notes) for i, child in enumerate(value)
        ]
        if key == "or" and soft:
            return {"or": children, "soft_signature_failures": True}
        return {key: children}
    if key == "not":
        return {"not": _rule(value, f"{where}.not", soft, notes)}
    return {"match": _match(value, f"{where}.match", notes)}


def _has_or(node: Any) -> bool:
    if isinstance(node, dict):
        return "or" in node or any(_has_or(child) for child in node.values())
    if isinstance(node, list):
        return any(_has_or(child) for child in node)
    return False


def _match(match: Any, where: str, notes: list[str]) -> dict[str, Any]:
    if not isinstance(match, dict):
        raise _Unconvertible(f"{where}: a match must be a mapping")
    kind = _scalar(match.get("type"))
    if kind == "ip-whitelist":
        return {"type": "ip", "cidrs": _ip_ranges(_scalar(match.get("ip-range")), where, notes)}
    if kind == "scalr-signature":
        return {"type": "scalr", "secret": _secret(match, where)}
    source = _rule_source(match.get("parameter"), f"{where}.parameter", notes)
    if kind == "value":
        return {"type": "value", "source": source, "value": _scalar(match.get("value"))}
    if kind == "regex":
        pattern = _scalar(match.get("regex"))
        try:
            compile_regex(pattern)
        except RegexError as exc:
            raise _Unconvertible(f"{where}: regex {pattern!r} is not valid here: {exc}") from None
        return {"type": "regex", "source": source, "regex": pattern}
    if kind in _HMAC_TYPES:
        if kind.startswith("payload-hash-"):
            notes.append(f"{where}: {kind} is webhook's deprecated name of {_HMAC_TYPES[kind]}")
        return {"type": _HMAC_TYPES[kind], "source": source, "secret": _secret(match, where)}
    raise _Unconvertible(f"{where}: unknown match type {kind!r}")


def _secret(match: dict[str, Any], where: str) -> str:
    secret = _scalar(match.get("secret"))
    if not secret:
        raise _Unconvertible(f"{where}: a signature match without a secret always fails")
    return secret


def _ip_ranges(text: str, where: str, notes: list[str]) -> list[str]:
    cidrs = []
    for item in text.split():
        try:
            if "/" in item:
                cidrs.append(str(ipaddress.ip_network(item, strict=False)))
                continue
            address = ipaddress.ip_address(item)
        except ValueError:
            raise _Unconvertible(f"{where}: {item!r} is not an IP address or range") from None
        if address.version == 6:
            notes.append(
                f"{where}: {item} is matched exactly (/128); webhook reads a plain IPv6 "
                "address as the whole /32 range around it"
            )
        cidrs.append(f"{address}/{address.max_prefixlen}")
    if not cidrs:
        raise _Unconvertible(f"{where}: ip-whitelist without an ip-range")
    return cidrs
