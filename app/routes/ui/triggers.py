"""``/ui/triggers``: list, detail with recent activity and a dry-run form, create, edit,
enable/disable and delete.

The forms build the same documents as the admin API takes and go through
:class:`app.triggers.admin.TriggerAdmin`, so the API's validation errors come
back; each is shown next to the field it belongs to. An edit starts from the
stored document (secrets stay on the server: a blank secret field keeps them).
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response, g, redirect, render_template, request, url_for
from pydantic import ValidationError

from app.errors import TriggerExists, ValidationFailed, validation_details
from app.ingest.dry_run import DryRunRequest, dry_run
from app.routes.ui import bp
from app.triggers.schema import TriggerDocument
from app.wiring import components

RECENT = 10
SCHEMES = ("github", "stripe", "slack", "standard", "hmac", "token", "none")
# Which form field shows an error at each document path (first match of its first part).
_FIELD_OF = {
    "name": "name",
    "description": "description",
    "auth.scheme": "auth_scheme",
    "auth": "auth_secret",
    "action.argv": "argv",
    "action": "argv",
}


def _field_for(path: str) -> str:
    for prefix, field in _FIELD_OF.items():
        if path == prefix or path.startswith(prefix + "."):
            return field
    return "extra"


def field_errors(details: list[dict[str, str]]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for item in details:
        field = _field_for(item["path"])
        where = f"{item['path']}: " if field == "extra" and item["path"] else ""
        errors.setdefault(field, []).append(where + item["message"])
    return errors


def _recent(name: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    built = components()
    window: dict[str, Any] = {"since": None, "until": None, "after": None, "limit": RECENT}
    deliveries = built.history.deliveries(trigger=name, outcome=None, **window)
    executions = built.control.list(trigger=name, status=None, **window)
    return deliveries, executions


@bp.get("/triggers")
def triggers() -> str:
    built = components()
    items = []
    for item in built.trigger_admin.list():
        last = built.history.deliveries(
            trigger=item["name"], outcome=None, since=None, until=None, after=None, limit=1
        )
        items.append({**item, "last_delivery": last[0] if last else None})
    return render_template("triggers.html", section="triggers", items=items)


def _render_trigger(name: str, dry: dict[str, Any] | None = None, status: int = 200) -> Response:
    item = components().trigger_admin.get(name)
    deliveries, executions = _recent(name)
    body = render_template(
        "trigger.html",
        section="triggers",
        item=item,
        document=json.dumps(item, indent=2),
        deliveries=deliveries,
        executions=executions,
        dry=dry,
        dry_form=request.form if dry is not None else {},
    )
    return Response(body, status=status, mimetype="text/html")


@bp.get("/triggers/<name>")
def trigger(name: str) -> Response:
    return _render_trigger(name)


def _parse_headers(text: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw in text.splitlines():
        if not raw.strip():
            continue
        key, sep, value = raw.partition(":")
        if not sep or not key.strip():
            raise ValidationFailed(f"Header lines are 'Name: value'; got {raw.strip()[:80]!r}.")
        headers[key.strip()] = value.strip()
    return headers


@bp.post("/triggers/<name>/test")
def test_trigger(name: str) -> Response:
    built = components()
    compiled = built.triggers.get(name)
    try:
        sample = DryRunRequest(
            method=request.form.get("method", "POST").upper() or "POST",
            headers=_parse_headers(request.form.get("headers", "")),
            body=request.form.get("body", ""),
        )
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc) from None
    result = dry_run(built.executions, compiled, sample, request_id=g.get("request_id"))
    return _render_trigger(name, dry=result)


def _form_page(
    values: dict[str, Any], errors: dict[str, list[str]], editing: str | None, status: int = 200
) -> Response:
    body = render_template(
        "trigger_form.html",
        section="triggers",
        values=values,
        errors=errors,
        editing=editing,
        schemes=SCHEMES,
    )
    return Response(body, status=status, mimetype="text/html")


def _extra(errors: dict[str, list[str]]) -> dict[str, Any]:
    text = request.form.get("extra", "").strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        errors.setdefault("extra", []).append(f"Not valid JSON: {exc}")
        return {}
    if not isinstance(value, dict):
        errors.setdefault("extra", []).append("Must be a JSON object of trigger fields.")
        return {}
    return value


def _argv() -> list[str]:
    return [line for line in request.form.get("argv", "").splitlines() if line.strip()]


def _new_action(given: Any) -> Any:
    """A command action from the argv field, unless the JSON field names another type."""
    action = given if isinstance(given, dict) else {}
    if action.get("type", "command") != "command":
        return action
    return {**action, "type": "command", "argv": _argv()}


@bp.get("/triggers/new")
def new_trigger() -> Response:
    values = {"auth_scheme": "github", "enabled": True, "extra": ""}
    return _form_page(values, {}, None)


@bp.post("/triggers/new")
def create_trigger() -> Response:
    form = request.form
    errors: dict[str, list[str]] = {}
    extra = _extra(errors)
    secret = form.get("auth_secret", "")
    scheme = form.get("auth_scheme", "")
    document: dict[str, Any] = {
        **extra,
        "name": form.get("name", "").strip(),
        "description": form.get("description", ""),
        "enabled": form.get("enabled") == "on",
        "auth": {**extra.get("auth", {}), "scheme": scheme, "secrets": [secret] if secret else []},
        "action": _new_action(extra.get("action")),
    }
    values: dict[str, Any] = {
        k: v for k, v in form.items() if k not in ("auth_secret", "csrf_token")
    }
    values["enabled"] = document["enabled"]
    if not errors:
        try:
            parsed = TriggerDocument.model_validate(document)
        except ValidationError as exc:
            errors = field_errors(validation_details(exc))
        else:
            try:
                components().trigger_admin.create(parsed)
            except TriggerExists:
                errors = {"name": ["A trigger with that name already exists."]}
            else:
                return redirect(url_for("ui.trigger", name=parsed.name), code=303)  # type: ignore[return-value]
    return _form_page(values, errors, None, 422)


@bp.get("/triggers/<name>/edit")
def edit_trigger(name: str) -> Response:
    item = components().trigger_admin.get(name)
    action = item["action"]
    values = {
        "name": name,
        "description": item["description"],
        "enabled": item["enabled"],
        "auth_scheme": item["auth"]["scheme"],
        "has_secret": item["auth"]["has_secret"],
        "argv": "\n".join(action.get("argv", [])),
        "action_type": action["type"],
        "extra": "",
    }
    return _form_page(values, {}, name)


@bp.post("/triggers/<name>/edit")
def update_trigger(name: str) -> Response:
    admin = components().trigger_admin
    current = admin.stored(name)
    if current is None:
        admin.get(name)  # raises TriggerNotFound
        raise AssertionError("unreachable")
    form = request.form
    errors: dict[str, list[str]] = {}
    extra = _extra(errors)
    document = current.model_dump()
    auth = {**document["auth"], **extra.pop("auth", {}), "scheme": form.get("auth_scheme", "")}
    if form.get("auth_secret"):
        auth["secrets"] = [form["auth_secret"]]
    action = {**document["action"], **extra.pop("action", {})}
    if action.get("type") == "command":
        action["argv"] = _argv()
    document.update(extra)
    document.update(
        description=form.get("description", ""),
        enabled=form.get("enabled") == "on",
        auth=auth,
        action=action,
    )
    values: dict[str, Any] = {
        k: v for k, v in form.items() if k not in ("auth_secret", "csrf_token")
    }
    values.update(
        name=name,
        enabled=document["enabled"],
        has_secret=bool(current.auth.secrets),
        action_type=current.action.type,
    )
    if not errors:
        try:
            admin.replace(name, document)
        except ValidationFailed as exc:
            errors = field_errors(exc.details or [])
        else:
            return redirect(url_for("ui.trigger", name=name), code=303)  # type: ignore[return-value]
    return _form_page(values, errors, name, 422)


@bp.post("/triggers/<name>/enabled")
def set_enabled(name: str) -> Response:
    admin = components().trigger_admin
    current = admin.stored(name)
    if current is None:
        admin.get(name)  # raises TriggerNotFound
        raise AssertionError("unreachable")
    admin.replace(name, current.model_dump() | {"enabled": request.form.get("enabled") == "1"})
    return redirect(url_for("ui.trigger", name=name), code=303)  # type: ignore[return-value]


@bp.get("/triggers/<name>/delete")
def confirm_delete(name: str) -> str:
    item = components().trigger_admin.get(name)
    return render_template("trigger_delete.html", section="triggers", item=item)


@bp.post("/triggers/<name>/delete")
def delete_trigger(name: str) -> Response:
    components().trigger_admin.delete(name)
    return redirect(url_for("ui.triggers"), code=303)  # type: ignore[return-value]
