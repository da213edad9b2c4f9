"""Payload values templated into argv, env, headers and bodies (Jinja2 sandbox).

Templates run in Jinja2's ``SandboxedEnvironment`` with ``StrictUndefined``: a
template cannot reach Python internals, and a reference to a missing field is
an error with a clear message instead of an empty string. Rendering is bounded
in size and time (:mod:`app.triggers.template_limits`); a template that goes
beyond a bound fails like any other render error. Each rendered value
stays one value - an argv element is never split, quoted or handed to a shell.

:func:`render_action` renders a trigger's whole action for one delivery
(argv/env for commands, the request for HTTP). The dry run and the runners use
the same functions, so what the dry run shows is exactly what would run. Values
equal to a trigger secret are masked in anything shown to people
(:func:`mask_secrets`).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from jinja2 import StrictUndefined, Template, TemplateError

from app.redaction import REDACTED, is_sensitive_header, url_credentials
from app.triggers.fields import as_text, field_filter
from app.triggers.rules_schema import rule_secrets
from app.triggers.template_limits import BoundedEnvironment, TemplateLimitExceeded, render_bounded

if TYPE_CHECKING:  # the schema validates templates with this module
    from app.triggers.schema import CommandAction, HttpAction, TriggerDocument

_ENV = BoundedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
# ``{{ body | field("a.b.0") }}`` and ``{{ headers | text }}``: see app.triggers.fields.
_ENV.filters.update(field=field_filter, text=as_text)


class TemplateRenderError(ValueError):
    """A template failed to compile or render; the message says which and why."""


# ``headers."x-github-event"`` (the JMESPath filter form) or ``headers.x-github-event``
# (a subtraction to Jinja): names with dashes need ``headers["x-github-event"]`` here.
_FILTER_FORM = re.compile(
    r"\b(?P<root>headers|query|body)\.(?:\"(?P<quoted>[^\"]+)\"|(?P<dashed>\w+(?:-\w+)+))"
)


def _hint(source: str) -> str:
    """A suggestion when ``source`` uses the filter form of a field name, else ''."""
    found = _FILTER_FORM.search(source)
    if found is None:
        return ""
    name = found["quoted"] or found["dashed"]
    return (
        f' (in a template write {found["root"]}["{name}"]; '
        f'{found["root"]}."{name}" is the filter\'s JMESPath form)'
    )


@lru_cache(maxsize=1024)
def compile_template(source: str) -> Template:
    """Compile (and cache) a template; raises TemplateRenderError on bad syntax.

    An error message suggests ``headers["x-name"]`` when the template uses the
    filter form ``headers."x-name"`` (or ``headers.x-name``).
    """
    try:
        return _ENV.from_string(source)
    except TemplateError as exc:
        raise TemplateRenderError(
            f"template {source!r} does not compile: {exc}{_hint(source)}"
        ) from None


def render(source: str, context: Mapping[str, Any]) -> str:
    """Render one template to one string."""
    if "{" not in source:
        return source
    try:
        return render_bounded(compile_template(source), context)
    except TemplateRenderError:
        raise
    except TemplateLimitExceeded as exc:
        raise TemplateRenderError(f"template {source!r} refused: {exc}") from None
    except Exception as exc:  # undefined fields, sandbox violations, filter errors
        raise TemplateRenderError(f"template {source!r} failed: {exc}{_hint(source)}") from None


def template_context(
    *,
    body: Any,
    headers: dict[str, str],
    query: dict[str, Any],
    trigger: str,
    delivery_id: str,
    method: str = "POST",
    remote_addr: str | None = None,
    raw_body: bytes = b"",
) -> dict[str, Any]:
    """What templates see: the parsed ``body``, ``headers`` (lower-case names),
    ``query``, ``trigger``, ``delivery_id``, ``request`` (``method``,
    ``remote_addr``) and ``raw_body`` (the body as UTF-8 text)."""
    return {
        "body": body,
        "headers": headers,
        "query": query,
        "trigger": trigger,
        "delivery_id": delivery_id,
        "request": {"method": method, "remote_addr": remote_addr or ""},
        "raw_body": raw_body.decode("utf-8", errors="replace"),
    }


@dataclass(frozen=True)
class RenderedCommand:
    argv: list[str]
    env: dict[str, str]
    files: dict[str, bytes] = field(default_factory=dict)  # variable name -> file content

    def shown(self) -> dict[str, object]:
        """What the dry run and reports show: argv, env, and each file's size only."""
        view: dict[str, object] = {"argv": self.argv, "env": self.env}
        if self.files:
            view["files"] = {name: {"bytes": len(data)} for name, data in self.files.items()}
        return view


def _without_nul(where: str, value: str) -> str:
    """``value``, unless it holds a NUL byte - which no argument or variable can carry."""
    if "\0" in value:
        raise TemplateRenderError(
            f"{where} renders to text with a NUL byte, which a program argument or "
            "environment variable cannot hold"
        )
    return value


def _file_content(name: str, text: str, is_base64: bool) -> bytes:
    if not is_base64:
        return text.encode("utf-8")
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise TemplateRenderError(
            f"files {name}: the content is not valid base64 ({exc})"
        ) from None


def render_command(action: CommandAction, context: dict[str, Any]) -> RenderedCommand:
    """The argv list, extra environment and file contents; raises TemplateRenderError.

    A value that renders to text containing a NUL byte is refused here (the
    operating system would cut it short or refuse to start the program). A
    file's content is its rendered text as UTF-8, or with ``base64: true`` the
    bytes it decodes to (whitespace ignored); text that is not base64 is
    refused here too.
    """
    return RenderedCommand(
        argv=[
            _without_nul(f"argv[{index}]", render(item, context))
            for index, item in enumerate(action.argv)
        ],
        env={
            name: _without_nul(f"env {name}", render(value, context))
            for name, value in action.env.items()
        },
        files={
            name: _file_content(name, render(spec.content, context), spec.base64)
            for name, spec in action.files.items()
        },
    )


def render_http(action: HttpAction, context: dict[str, Any]) -> dict[str, Any]:
    """``{"method", "url", "headers", "body"}`` (body None = forward the original)."""
    return {
        "method": action.method,
        "url": render(action.url, context),
        "headers": {name: render(value, context) for name, value in action.headers.items()},
        "body": None if action.body is None else render(action.body, context),
    }


def render_action(document: TriggerDocument, context: dict[str, Any]) -> dict[str, Any]:
    action = document.action
    if action.type == "command":
        return {"type": "command", **render_command(action, context).shown()}
    return {"type": "http", **render_http(action, context)}


def trigger_secrets(document: TriggerDocument) -> list[str]:
    """Every credential text of the trigger, to mask in reports and logs."""
    secrets = list(document.auth.secrets)
    if document.action.type == "http":
        action = document.action
        if action.signing_secret:
            secrets.append(action.signing_secret)
        secrets.extend(url_credentials(action.url))
        secrets.extend(
            text for name, text in action.headers.items() if is_sensitive_header(name) and text
        )
    if document.notify is not None:
        if document.notify.signing_secret:
            secrets.append(document.notify.signing_secret)
        if document.notify.url:
            secrets.extend(url_credentials(document.notify.url))
    if document.rules is not None:
        secrets.extend(rule_secrets(document.rules))
    # Longest first, so a secret containing another is masked whole.
    return sorted(secrets, key=len, reverse=True)


def mask_secrets(value: Any, secrets: Iterable[str]) -> Any:
    """A copy of ``value`` (str, list, dict) with every secret's text replaced."""
    secrets = [secret for secret in secrets if secret]
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, list):
        return [mask_secrets(item, secrets) for item in value]
    if isinstance(value, dict):
        return {key: mask_secrets(item, secrets) for key, item in value.items()}
    return value
