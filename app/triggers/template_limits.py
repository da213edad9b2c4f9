"""Bounds on template rendering: size of every value, and time.

Templates are written by whoever manages triggers, but the data they run over
comes from senders, and a sandbox alone does not stop a template from burning
the worker's CPU (``{{ lipsum(1000000) }}``, nested loops) or memory
(``{{ "x" * 10 ** 10 }}``). :class:`BoundedEnvironment` is the sandbox with:

* ``lipsum`` and ``range`` refused beyond :data:`MAX_LIPSUM_PARAGRAPHS` and
  :data:`MAX_RANGE` items;
* ``*``, ``+``, ``**`` and ``%`` checked *before* they run: a string or list
  they would make longer than :data:`MAX_RENDERED_CHARS`, an integer power
  beyond :data:`MAX_POWER_BITS` bits, a ``%`` width or precision above
  :data:`MAX_FORMAT_WIDTH` are refused (``center`` and ``format`` likewise);
* :func:`render_bounded`: a rendered value is refused once longer than
  :data:`MAX_RENDERED_CHARS`, and rendering stops after
  :data:`RENDER_SECONDS` (checked at every line of Python the render runs,
  through a trace function installed only while it runs).

Each refusal is a :class:`TemplateLimitExceeded` (a ``ValueError``) whose
message says which limit was hit.
"""

from __future__ import annotations

import math
import re
import sys
import time
from collections.abc import Mapping
from types import FrameType
from typing import Any

from jinja2 import Template
from jinja2.filters import do_center, do_format
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import generate_lorem_ipsum

MAX_RENDERED_CHARS = 4 * 1024 * 1024
RENDER_SECONDS = 0.25
MAX_RANGE = 10_000
MAX_LIPSUM_PARAGRAPHS = 100
MAX_POWER_BITS = 4096
MAX_FORMAT_WIDTH = 10_000

_FORMAT_NUMBERS = re.compile(r"%[-#0 +]*(\d*)(?:\.(\d*))?")


class TemplateLimitExceeded(ValueError):
    """A template went beyond one of the rendering bounds."""


def _sized(value: Any) -> bool:
    return isinstance(value, str | bytes | list | tuple)


def _check_repeat(left: Any, right: Any) -> None:
    for seq, count in ((left, right), (right, left)):
        if _sized(seq) and isinstance(count, int) and len(seq) * count > MAX_RENDERED_CHARS:
            raise TemplateLimitExceeded(
                f"repeating a value {count} times would exceed {MAX_RENDERED_CHARS} items"
            )


def _check_concat(left: Any, right: Any) -> None:
    if _sized(left) and _sized(right) and len(left) + len(right) > MAX_RENDERED_CHARS:
        raise TemplateLimitExceeded(f"joining values would exceed {MAX_RENDERED_CHARS} items")


def _check_power(base: Any, exponent: Any) -> None:
    ints = isinstance(base, int) and isinstance(exponent, int)
    if ints and abs(base) > 1 and exponent > 0 and exponent * math.log2(abs(base)) > MAX_POWER_BITS:
        raise TemplateLimitExceeded(f"{base} ** {exponent} exceeds {MAX_POWER_BITS} bits")


def _check_format(pattern: Any) -> None:
    if isinstance(pattern, str):
        for match in _FORMAT_NUMBERS.finditer(pattern):
            for number in match.groups():
                if number and int(number) > MAX_FORMAT_WIDTH:
                    raise TemplateLimitExceeded(f"format width {number} exceeds {MAX_FORMAT_WIDTH}")


def _range(*args: int) -> range:
    values = range(*args)
    if len(values) > MAX_RANGE:
        raise TemplateLimitExceeded(f"range of {len(values)} items exceeds {MAX_RANGE}")
    return values


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    if n > MAX_LIPSUM_PARAGRAPHS or max > 1000:
        raise TemplateLimitExceeded(
            f"lipsum is limited to {MAX_LIPSUM_PARAGRAPHS} paragraphs of 1000 words"
        )
    return str(generate_lorem_ipsum(n, html, min, max))


def _center(value: str, width: int = 80) -> str:
    if width > MAX_FORMAT_WIDTH:
        raise TemplateLimitExceeded(f"center width {width} exceeds {MAX_FORMAT_WIDTH}")
    return do_center(value, width)


def _format(value: str, *args: Any, **kwargs: Any) -> str:
    _check_format(value)
    return do_format(value, *args, **kwargs)


class BoundedEnvironment(SandboxedEnvironment):
    """Jinja2's sandbox with size limits on the operations that can blow up."""

    intercepted_binops = frozenset({"*", "+", "**", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals.update(range=_range, lipsum=_lipsum)
        self.filters.update(center=_center, format=_format)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            _check_repeat(left, right)
        elif operator == "+":
            _check_concat(left, right)
        elif operator == "**":
            _check_power(left, right)
        elif operator == "%":
            _check_format(left)
        return super().call_binop(context, operator, left, right)


class _Deadline:
    """A trace function that stops the render once its time is up."""

    def __init__(self, seconds: float) -> None:
        self._deadline = time.monotonic() + seconds
        self._seconds = seconds

    def __call__(self, frame: FrameType, event: str, arg: Any) -> _Deadline:
        if time.monotonic() > self._deadline:
            raise TemplateLimitExceeded(f"rendering took longer than {self._seconds} s")
        return self


def render_bounded(template: Template, context: Mapping[str, Any]) -> str:
    """Render ``template``; raises TemplateLimitExceeded past a size or time limit."""
    previous = sys.gettrace()
    sys.settrace(_Deadline(RENDER_SECONDS))
    try:
        parts: list[str] = []
        size = 0
        for part in template.generate(**context):
            size += len(part)
            if size > MAX_RENDERED_CHARS:
                raise TemplateLimitExceeded(
                    f"rendered value is longer than {MAX_RENDERED_CHARS} characters"
                )
            parts.append(part)
        return "".join(parts)
    finally:
        sys.settrace(previous)
