"""Payload values templated into argv, env, headers and bodies (Jinja2 sandbox).

Templates run in Jinja2's ``SandboxedEnvironment`` with ``StrictUndefined``: a
template cannot reach Python internals, and a reference to a missing field is
an error with a clear message instead of an empty string. Each rendered value
stays one value - an argv element is never split, quoted or handed to a shell.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


class TemplateRenderError(ValueError):
    """A template failed to compile or render; the message says which and why."""


@lru_cache(maxsize=1024)
def compile_template(source: str) -> Template:
    """Compile (and cache) a template; raises TemplateRenderError on bad syntax."""
    try:
        return _ENV.from_string(source)
    except TemplateError as exc:
        raise TemplateRenderError(f"template {source!r} does not compile: {exc}") from None


def render(source: str, context: Mapping[str, Any]) -> str:
    """Render one template to one string."""
    if "{" not in source:
        return source
    try:
        return compile_template(source).render(**context)
    except TemplateRenderError:
        raise
    except Exception as exc:  # undefined fields, sandbox violations, filter errors
        raise TemplateRenderError(f"template {source!r} failed: {exc}") from None
