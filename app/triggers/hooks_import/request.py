"""How a converted trigger takes requests: its methods and how it reads bodies.

Contract: :func:`_methods` is ``http-methods`` (every method Hookrunner serves
when unset; others are noted and left out); :func:`_payload` reads bodies as
webhook does (JSON, forms as fields, XML, multipart), with
``incoming-payload-content-type`` and ``parse-parameters-as-json`` (top-level
payload fields only; others are noted).
"""

from __future__ import annotations

from typing import Any

from app.triggers.hooks_import.parameters import _arguments, _name_of
from app.triggers.hooks_import.scalars import _scalar, _Unconvertible
from app.triggers.response_schema import METHODS


def _methods(hook: dict[str, Any], notes: list[str]) -> list[str]:
    value = hook.get("http-methods")
    if not value:
        return list(METHODS)
    if not isinstance(value, list):
        raise _Unconvertible("http-methods: must be a list")
    methods = []
    for item in value:
        method = _scalar(item).strip().upper()
        if method in METHODS:
            methods.append(method)
        else:
            notes.append(f"http-methods: {method!r} is not served by Hookrunner")
    if not methods:
        raise _Unconvertible("http-methods: none of them is served by Hookrunner")
    return methods


def _payload(hook: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """How webhook reads bodies: JSON, forms as fields, XML, multipart."""
    payload: dict[str, Any] = {"xml": True, "multipart": True, "form_payload": "keep"}
    content_type = _scalar(hook.get("incoming-payload-content-type"))
    if content_type:
        payload["content_type"] = content_type
    fields = []
    for i, argument in enumerate(_arguments(hook, "parse-parameters-as-json")):
        source, name = _scalar(argument.get("source")), _name_of(argument)
        if source == "payload" and name and "." not in name:
            fields.append(name)
        else:
            notes.append(
                f"parse-parameters-as-json[{i}]: only top-level payload fields are decoded;"
                f" {source} {name!r} stays text"
            )
    if fields:
        payload["json_fields"] = fields
    return payload
