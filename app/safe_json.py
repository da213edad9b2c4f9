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
"""

from __future__ import annotations

import json
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
    """``json.loads`` with the depth limit and unique keys; raises ``ValueError``
    (:class:`JsonTooDeep`, :class:`DuplicateKey` or the parser's own)."""
    try:
        value = json.loads(data, object_pairs_hook=_unique_pairs)
    except RecursionError:
        raise JsonTooDeep() from None
    if isinstance(value, dict | list) and _deeper_than(value, MAX_JSON_DEPTH):
        raise JsonTooDeep()
    return value
