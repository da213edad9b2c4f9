"""The ``rules`` field of a trigger: a tree of request conditions checked at ingest.

A node is exactly one of::

    {"and": [node, ...]}                 every child matches
    {"or": [node, ...], "soft_signature_failures": false}
                                         any child matches
    {"not": node}                        the child does not match
    {"match": {"type": ..., "source": ..., ...}}

A ``match`` reads one value from the request (``source``) and tests it:

=============================  ==============================================
``type``                       test
=============================  ==============================================
``value``                      the value equals ``value``
``regex``                      ``regex`` is found in the value (RE2 syntax,
                               as Go's; :mod:`app.triggers.regex`)
``hmac-sha1|sha256|sha512``    the value (a signature header) holds the hex
                               HMAC of the raw body with ``secret``, bare or
                               as ``sha256=<hex>``, one of a comma-separated list
``ip``                         the client address lies in one of ``cidrs``
``scalr``                      Scalr's ``X-Signature`` (HMAC-SHA1 of body and
                               ``Date`` with ``secret``), ``Date`` within 5 min
=============================  ==============================================

Sources: ``header:<name>``, ``query:<name>``, ``payload:<path>`` (a path in
the parsed body, see :func:`app.triggers.fields.lookup`), ``string:<text>``,
``raw_body``, ``method``, ``remote_addr``, and the whole ``body``, ``headers``
or ``query`` as JSON text. ``ip`` and ``scalr`` need no source.

Secrets are write-only: :func:`mask_rule_secrets` is what the API shows, and
:func:`restore_rule_secrets` puts stored secrets back where a client sends the
mask.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from app.redaction import REDACTED
from app.triggers.regex import RegexError, compile_regex

MATCH_TYPES = frozenset(
    {"value", "regex", "hmac-sha1", "hmac-sha256", "hmac-sha512", "ip", "scalr"}
)
_PREFIXED_SOURCES = ("header:", "query:", "payload:", "string:")
_PLAIN_SOURCES = frozenset({"raw_body", "method", "remote_addr", "body", "headers", "query"})
MAX_DEPTH = 32
MAX_NODES = 256


def _check_source(source: Any, where: str) -> None:
    if not isinstance(source, str):
        raise ValueError(f"{where}: source must be a string")
    if source in _PLAIN_SOURCES:
        return
    prefix, colon, name = source.partition(":")
    if colon and f"{prefix}:" in _PREFIXED_SOURCES and (name or prefix == "string"):
        return
    raise ValueError(
        f"{where}: unknown source {source!r} (header:<name>, query:<name>, payload:<path>,"
        " string:<text>, raw_body, method, remote_addr, body, headers, query)"
    )


def _check_match(match: Any, where: str) -> None:
    if not isinstance(match, dict):
        raise ValueError(f"{where}: match must be an object")
    kind = match.get("type")
    if kind not in MATCH_TYPES:
        raise ValueError(f"{where}: type must be one of {', '.join(sorted(MATCH_TYPES))}")
    allowed = {"type", "source"}
    if kind not in ("ip", "scalr"):
        _check_source(match.get("source"), where)
    elif "source" in match:
        raise ValueError(f"{where}: a {kind} match reads no source")
    if kind == "value":
        allowed.add("value")
        if not isinstance(match.get("value"), str):
            raise ValueError(f"{where}: a value match needs a string 'value'")
    elif kind == "regex":
        allowed.add("regex")
        if not isinstance(match.get("regex"), str):
            raise ValueError(f"{where}: a regex match needs a string 'regex'")
        try:
            compile_regex(match["regex"])
        except RegexError as exc:
            raise ValueError(f"{where}: invalid regex (RE2 syntax): {exc}") from None
    elif kind == "ip":
        allowed.add("cidrs")
        cidrs = match.get("cidrs")
        if not isinstance(cidrs, list) or not cidrs:
            raise ValueError(f"{where}: an ip match needs a non-empty 'cidrs' list")
        for cidr in cidrs:
            try:
                ipaddress.ip_network(str(cidr), strict=False)
            except ValueError:
                raise ValueError(f"{where}: {cidr!r} is not an address or CIDR range") from None
    else:
        allowed.add("secret")
        secret = match.get("secret")
        if not isinstance(secret, str) or not secret or len(secret) > 4096:
            raise ValueError(f"{where}: a {kind} match needs a 'secret' (1-4096 characters)")
    extra = set(match) - allowed
    if extra:
        raise ValueError(f"{where}: unexpected field(s) {', '.join(sorted(extra))}")


def check_rules(
    node: Any, where: str = "rules", depth: int = 0, count: list[int] | None = None
) -> Any:
    """``node`` when it is a valid rules tree; raises ValueError naming the bad part."""
    count = [0] if count is None else count
    count[0] += 1
    if depth > MAX_DEPTH or count[0] > MAX_NODES:
        raise ValueError(f"rules nest deeper than {MAX_DEPTH} or have over {MAX_NODES} nodes")
    if not isinstance(node, dict):
        raise ValueError(f"{where}: a rule must be an object")
    keys = set(node) & {"and", "or", "not", "match"}
    if len(keys) != 1:
        raise ValueError(f"{where}: a rule has exactly one of and, or, not, match")
    (key,) = keys
    allowed = {key, "soft_signature_failures"} if key == "or" else {key}
    if set(node) - allowed:
        raise ValueError(f"{where}: unexpected field(s) {', '.join(sorted(set(node) - allowed))}")
    if key in ("and", "or"):
        children = node[key]
        if not isinstance(children, list) or not children:
            raise ValueError(f"{where}.{key}: needs a non-empty list of rules")
        for index, child in enumerate(children):
            check_rules(child, f"{where}.{key}[{index}]", depth + 1, count)
        if not isinstance(node.get("soft_signature_failures", False), bool):
            raise ValueError(f"{where}: soft_signature_failures must be true or false")
    elif key == "not":
        check_rules(node["not"], f"{where}.not", depth + 1, count)
    else:
        _check_match(node["match"], f"{where}.match")
    return node


def _walk_matches(node: Any) -> list[dict[str, Any]]:
    if not isinstance(node, dict):
        return []
    if "match" in node and isinstance(node["match"], dict):
        return [node["match"]]
    if "not" in node:
        return _walk_matches(node["not"])
    children = node.get("and") or node.get("or") or []
    return [match for child in children for match in _walk_matches(child)]


def rule_secrets(node: Any) -> list[str]:
    """Every secret in the tree (to mask in reports and logs)."""
    return [str(m["secret"]) for m in _walk_matches(node) if m.get("secret")]


def mask_rule_secrets(node: Any) -> Any:
    """A copy of the tree with every ``secret`` replaced by the mask."""
    if isinstance(node, dict):
        return {
            key: REDACTED if key == "secret" else mask_rule_secrets(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [mask_rule_secrets(item) for item in node]
    return node


def restore_rule_secrets(new: Any, stored: Any) -> Any:
    """``new`` with each masked ``secret`` taken from the same place in ``stored``.

    A mask with no stored secret at that place stays as it is (and is then a
    literal secret the client chose).
    """
    if isinstance(new, dict):
        result = {}
        for key, value in new.items():
            old = stored.get(key) if isinstance(stored, dict) else None
            if key == "secret" and value == REDACTED and isinstance(old, str):
                result[key] = old
            else:
                result[key] = restore_rule_secrets(value, old)
        return result
    if isinstance(new, list):
        olds = stored if isinstance(stored, list) else []
        return [
            restore_rule_secrets(item, olds[index] if index < len(olds) else None)
            for index, item in enumerate(new)
        ]
    return new
