"""Parsing untrusted JSON with a documented nesting limit.

:func:`loads` is :func:`json.loads` that never raises :class:`RecursionError`:
a document nested deeper than :data:`MAX_JSON_DEPTH` levels (arrays and objects
count one level each; ``{}`` is one level) raises :class:`JsonTooDeep`, a
:class:`ValueError`, like any other invalid JSON. Real webhook payloads stay far
below the limit; much deeper documents would exhaust the interpreter's stack
later on (filters, templates, serialisation) and only serve to crash requests.
"""

from __future__ import annotations

import json
from typing import Any

MAX_JSON_DEPTH = 128


class JsonTooDeep(ValueError):
    """The document nests arrays/objects deeper than :data:`MAX_JSON_DEPTH`."""

    def __init__(self) -> None:
        super().__init__(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")


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
    """``json.loads`` with the depth limit; raises ``ValueError`` (or ``JsonTooDeep``)."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise JsonTooDeep() from None
    if isinstance(value, dict | list) and _deeper_than(value, MAX_JSON_DEPTH):
        raise JsonTooDeep()
    return value
