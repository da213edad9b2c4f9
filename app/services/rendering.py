"""Render a trigger's action for one delivery: argv/env for commands, the request for HTTP.

Used by the dry run now and by the runners when an execution starts, so what
the dry run shows is exactly what would run. Every template renders to one
string; an argv element is never split. Values equal to a trigger secret are
masked in anything shown to people (:func:`mask_secrets`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from app.schemas.triggers import CommandAction, HttpAction, TriggerDocument
from app.services.redaction import REDACTED
from app.services.templates import render


def template_context(
    *, body: Any, headers: dict[str, str], query: dict[str, Any], trigger: str, delivery_id: str
) -> dict[str, Any]:
    return {
        "body": body,
        "headers": headers,
        "query": query,
        "trigger": trigger,
        "delivery_id": delivery_id,
    }


@dataclass(frozen=True)
class RenderedCommand:
    argv: list[str]
    env: dict[str, str]


def render_command(action: CommandAction, context: dict[str, Any]) -> RenderedCommand:
    """The argv list and extra environment; raises TemplateRenderError."""
    return RenderedCommand(
        argv=[render(item, context) for item in action.argv],
        env={name: render(value, context) for name, value in action.env.items()},
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
    if isinstance(document.action, CommandAction):
        return {"type": "command", **asdict(render_command(document.action, context))}
    return {"type": "http", **render_http(document.action, context)}


def trigger_secrets(document: TriggerDocument) -> list[str]:
    secrets = list(document.auth.secrets)
    if isinstance(document.action, HttpAction) and document.action.signing_secret:
        secrets.append(document.action.signing_secret)
    return secrets


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
