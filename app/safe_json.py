"""Parsing untrusted JSON with a documented nesting limit.

:func:`loads` is :func:`json.loads` that never raises :class:`RecursionError`:
a document nested deeper than :data:`MAX_JSON_DEPTH` levels (arrays and objects
count one level each; ``{}`` is one level) raises :class:`JsonTooDeep`, a
:class:`ValueError`, like any other invalid JSON. Real webhook payloads stay far
below the limit; much deeper documents would exhaust the interpreter's stack
later on (filters, templates, serialisation) and only serve to crash requests.

An object with the same key twice raises :class:`DuplicateKey` (a
``ValueError``): which of the two values counts differs between parsers, so a
filter, a dedup key and the program that finally reads the payload could each
see another document.

What RFC 8259 does not allow is refused too, as :class:`NotStandardJson`:
``NaN``, ``Infinity`` and ``-Infinity``, numbers too large for a float (they
would all become the same infinity), and a ``\\u`` escape of a lone surrogate
(it is no character: such a string cannot be written as UTF-8, hashed for a
dedup key or passed to a command).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_JSON_DEPTH = 128


class JsonTooDeep(ValueError):
    """The document nests arrays/objects deeper than :data:`MAX_JSON_DEPTH`."""

    def __init__(self) -> None:
        super().__init__(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")


class DuplicateKey(ValueError):
    """An object in the document has the same key more than once."""

    def __init__(self, key: str) -> None:
        super().__init__(f"duplicate key {key[:64]!r} in a JSON object")


class NotStandardJson(ValueError):
    """A value JSON (RFC 8259) has no room for: see the module docstring."""


# A \u escape of a surrogate; only a document with one needs its strings checked.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE_ESCAPE_TEXT = re.compile(r"\\u[dD][89a-fA-F]")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise NotStandardJson(f"number {text[:32]!r} is out of range")
    return value


def _no_constants(name: str) -> Any:
    raise NotStandardJson(f"{name} is not JSON")


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            texts = [node]
        elif isinstance(node, dict):
            texts = list(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
            continue
        else:
            continue
        for text in texts:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return result


def _deeper_than(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def loads(data: str | bytes) -> Any:
    """``json.loads`` with the depth limit, unique keys and standard values only;
    raises ``ValueError`` (:class:`JsonTooDeep`, :class:`DuplicateKey`,
    :class:`NotStandardJson` or the parser's own)."""
    try:
        value = json.loads(
            data,
            object_pairs_hook=_unique_pairs,
            parse_float=_finite,
            parse_constant=_no_constants,
        )
    except RecursionError:
        raise JsonTooDeep() from None
    if isinstance(value, dict | list) and _deeper_than(value, MAX_JSON_DEPTH):
        raise JsonTooDeep()
    escape = (
        _SURROGATE_ESCAPE_TEXT.search(data)
        if isinstance(data, str)
        else _SURROGATE_ESCAPE.search(data)
    )
    if escape and _has_lone_surrogate(value):
        raise NotStandardJson("a \\u escape names a lone surrogate, which is no character")
    return value
