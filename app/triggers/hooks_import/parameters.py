"""Webhook's value sources (arguments with ``source`` and ``name``) in Hookrunner terms.

Contract: :func:`_value_template` is the template rendering what webhook's
argument gives (missing: ''), the entire-* sources as JSON text with Go's
escapes; :func:`_rule_source` is the rules ``source`` for a rule's parameter;
:func:`_arguments` reads a hook's list of arguments. A source with no
equivalent is :class:`_Unconvertible`; a difference that remains is a note.
"""

from __future__ import annotations

import json
from typing import Any

from app.triggers.hooks_import.scalars import _literal, _scalar, _Unconvertible

# Go's JSON writer escapes these characters in strings; so do imported templates, so that
# scripts get the text they got from webhook.
_GO_JSON_ESCAPES = (
    r' | replace("&", "\\u0026") | replace("<", "\\u003c") | replace(">", "\\u003e")'
    r' | replace("\u2028", "\\u2028") | replace("\u2029", "\\u2029")'
)


def _name_of(argument: dict[str, Any]) -> str:
    return _scalar(argument.get("name"))


def _check_argument(argument: Any, where: str) -> dict[str, Any]:
    if not isinstance(argument, dict):
        raise _Unconvertible(f"{where}: an argument must be a mapping with source and name")
    if argument.get("headers-to-add-to-signature-payload"):
        raise _Unconvertible(f"{where}: headers-to-add-to-signature-payload has no equivalent")
    return argument


def _arguments(hook: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = hook.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Unconvertible(f"{key}: must be a list")
    return [_check_argument(item, f"{key}[{i}]") for i, item in enumerate(value)]


def _value_template(argument: dict[str, Any], where: str, notes: list[str]) -> str:
    """A template rendering what webhook's argument gives (missing: '')."""
    source, name = _scalar(argument.get("source")), _name_of(argument)
    quoted = json.dumps(name)
    if source == "header":
        return f"{{{{ headers | field({json.dumps(name.lower())}) }}}}"
    if source in ("url", "query"):
        return f"{{{{ query | field({quoted}) }}}}"
    if source == "payload":
        return f"{{{{ body | field({quoted}) }}}}"
    if source == "string":
        return _literal(name)
    if source == "raw-request-body":
        return "{{ raw_body }}"
    if source == "request":
        if name.lower() == "method":
            return "{{ request.method }}"
        if name.lower() == "remote-addr":
            notes.append(f"{where}: the client address comes without the ':port' webhook adds")
            return "{{ request.remote_addr }}"
        raise _Unconvertible(f"{where}: request value {name!r} (method or remote-addr)")
    if source == "entire-payload":
        return "{{ body | text" + _GO_JSON_ESCAPES + " }}"
    if source == "entire-headers":
        notes.append(f"{where}: header names are lower-case (webhook writes X-Hub-Signature)")
        return "{{ headers | text" + _GO_JSON_ESCAPES + " }}"
    if source == "entire-query":
        return "{{ query | text" + _GO_JSON_ESCAPES + " }}"
    raise _Unconvertible(f"{where}: unknown source {source!r}")


def _rule_source(argument: Any, where: str, notes: list[str]) -> str:
    """The rules ``source`` for a webhook parameter."""
    argument = _check_argument(argument, where)
    source, name = _scalar(argument.get("source")), _name_of(argument)
    prefixed = {"header": "header", "url": "query", "query": "query", "payload": "payload"}
    if source in prefixed:
        if not name:
            raise _Unconvertible(f"{where}: a {source} parameter needs a name")
        return f"{prefixed[source]}:{name}"
    if source == "string":
        return f"string:{name}"
    if source == "request" and name.lower() == "method":
        return "method"
    if source == "request" and name.lower() == "remote-addr":
        notes.append(f"{where}: the client address is matched without the ':port' webhook adds")
        return "remote_addr"
    plain = {
        "raw-request-body": "raw_body",
        "entire-payload": "body",
        "entire-headers": "headers",
        "entire-query": "query",
    }
    if source in plain:
        if source == "entire-headers":
            notes.append(f"{where}: header names are lower-case in the JSON text")
        return plain[source]
    raise _Unconvertible(f"{where}: unknown parameter source {source!r}")
