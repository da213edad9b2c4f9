"""Request values by path, and values as one string: shared by rules and templates.

:func:`lookup` walks a parsed body (or headers, or query) along a dotted path the
way adnanh/webhook does, so imported hooks read the same values: at each level
the whole remaining path is first tried as one key (``"a.b"`` may be a key), then
the part before the first dot; in a list, a part is a zero-based index
(``commits.0.id``). A missing value is :data:`MISSING`, never an exception.

:func:`as_text` is the one conversion of a value to an argument, an environment
value or a rule operand: strings as they are, numbers and booleans as JSON text
(``true``, ``1.5``), objects and arrays as compact key-sorted JSON, ``None`` and
missing values as the empty string.
"""

from __future__ import annotations

import json
from typing import Any, Final


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


def lookup(value: Any, path: str) -> Any:
    """The value at ``path`` inside ``value``, or :data:`MISSING`."""
    if isinstance(value, dict):
        if path in value:
            return value[path]
        head, dot, rest = path.partition(".")
        if head not in value:
            return MISSING
        return lookup(value[head], rest) if dot else value[head]
    if isinstance(value, list) and value:
        head, dot, rest = path.partition(".")
        if not head.isdigit() or int(head) >= len(value):
            return MISSING
        return lookup(value[int(head)], rest) if dot else value[int(head)]
    return MISSING


def as_text(value: Any) -> str:
    """``value`` as one string (see the module docstring)."""
    if value is MISSING or value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def field_filter(value: Any, path: str) -> str:
    """The ``field`` template filter: ``{{ body | field("a.b.0") }}``, '' when absent."""
    return as_text(lookup(value, path))
