"""Single values of a hook as Hookrunner's fields take them.

Contract: :func:`_scalar` is a YAML scalar as webhook's string fields read it
(numbers written as Go writes them, '' for null); :func:`_flag` a true/false
property; :func:`_literal` a string from the file as a template that renders to
exactly that string (Jinja syntax in it is not evaluated). A hook part with no
Hookrunner equivalent raises :class:`_Unconvertible`: the hook is not
converted, and the message is an error in its report.
"""

from __future__ import annotations

import decimal
import json
import math
from typing import Any

_JINJA = ("{{", "{%", "{#")


class _Unconvertible(Exception):
    """A hook part that has no Hookrunner equivalent; the hook is not converted."""


def _literal(text: str) -> str:
    """``text`` as a template that renders to exactly ``text``."""
    if not any(marker in text for marker in _JINJA):
        return text
    if "{% endraw %}" not in text:
        return "{% raw %}" + text + "{% endraw %}"
    return "{{ " + json.dumps(text) + " }}"


def _go_float(value: float) -> str:
    """``value`` as Go's ``strconv.FormatFloat(value, 'g', -1, 64)`` writes it (``2``,
    ``1.5``, ``1e+06``): how webhook turns a YAML number into a string field."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    sign, digit_tuple, exponent = decimal.Decimal(repr(value)).as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    exponent += len(digit_tuple) - len(digits)
    point = len(digits) + exponent  # where the decimal point goes in digits
    negative = "-" if sign else ""
    if point - 1 < -4 or point - 1 >= 6:  # webhook's %e form
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        power = point - 1
        return f"{negative}{mantissa}e{'-' if power < 0 else '+'}{abs(power):02d}"
    if point <= 0:
        return f"{negative}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return negative + digits + "0" * (point - len(digits))
    return f"{negative}{digits[:point]}.{digits[point:]}"


def _scalar(value: Any) -> str:
    """A YAML scalar as webhook's string fields read it (``true``, ``42``, ``2`` for
    ``2.0``, '' for null)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, dict | list):
        raise _Unconvertible(f"{json.dumps(value)[:80]} where a string is expected")
    return str(value)


def _flag(hook: dict[str, Any], key: str) -> bool:
    value = hook.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _Unconvertible(f"{key}: {value!r} is not true or false")
    return value
