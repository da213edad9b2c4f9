"""``hookrunner triggers list|show``: what is configured, and what was refused lately."""

from __future__ import annotations

import json

import click

from app.commands.common import emit, json_option, session, table
from app.store import refusals as refusals_sql

SHOWN_REFUSALS = 10


@click.group("triggers")
def triggers_group() -> None:
    """Inspect triggers (change them with ``apply`` or the admin API)."""


@triggers_group.command("list")
@json_option
def list_command(as_json: bool) -> None:
    """Every trigger: name, state, auth scheme, action."""
    with session() as s:
        views = s.admin.list()

    def human() -> list[str]:
        rows = [["NAME", "STATE", "AUTH", "ACTION"]]
        for view in views:
            action = view["action"]
            target = " ".join(action["argv"]) if action["type"] == "command" else action["url"]
            state = "enabled" if view["enabled"] else "disabled"
            rows.append(
                [view["name"], state, view["auth"]["scheme"], f"{action['type']}: {target}"]
            )
        return table(rows)

    emit({"items": views}, as_json, human)


@triggers_group.command("show")
@click.argument("name")
@json_option
def show_command(name: str, as_json: bool) -> None:
    """One trigger (secrets never shown) and its last refused requests."""
    with session() as s:
        view = s.admin.get(name)
        refused = [row.api_view() for row in refusals_sql.recent(s.db, name, SHOWN_REFUSALS)]

    def human() -> list[str]:
        lines = json.dumps(view, indent=2).splitlines()
        lines.append(f"recent refusals ({len(refused)}):" if refused else "recent refusals: none")
        lines += [
            f"  {r['at']}  {r['status']} {r['reason']}  from {r['source_address'] or '?'}"
            f"  request {r['request_id'] or '-'}"
            for r in refused
        ]
        return lines

    emit(view | {"recent_refusals": refused}, as_json, human)
