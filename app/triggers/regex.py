"""Regular expressions from trigger documents (``match: regex`` rules), run by RE2.

Python's ``re`` backtracks: ``(a+)+$`` against a few dozen characters of payload
takes minutes of CPU inside the worker that serves requests, and a webhook body
is chosen by whoever sends it. RE2 - the engine behind Go's ``regexp``, so also
what adnanh/webhook's regex rules use - matches in time linear in the input and
refuses, when the trigger is saved, what only backtracking can do
(back-references, look-ahead and look-behind).

Contract:

* :func:`compile_regex` raises :class:`RegexError` (a ``ValueError`` whose text
  says what is wrong) for a pattern RE2 does not accept; nothing is printed
  (RE2 would log to stderr, past the JSON logs).
* Compiled patterns are cached (256, least recently used), so the ingest path
  compiles a trigger's patterns once.
* :meth:`Regex.search` is true when the pattern is found anywhere in the text,
  as ``re.search``; classes like ``\\d`` and ``\\w`` are ASCII, as in Go.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False


class RegexError(ValueError):
    """A pattern RE2 does not accept."""


class Regex:
    """One compiled pattern."""

    def __init__(self, compiled: Any) -> None:
        self._compiled = compiled

    def search(self, text: str) -> bool:
        return self._compiled.search(text) is not None


@lru_cache(maxsize=256)
def compile_regex(pattern: str) -> Regex:
    """The compiled ``pattern``; raises :class:`RegexError`."""
    try:
        return Regex(re2.compile(pattern, options=_OPTIONS))
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "invalid"
        text = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
        raise RegexError(text) from None
