"""``hookrunner executions list``: recent executions, newest first (no output)."""

from __future__ import annotations

import click

from app.commands.common import emit, json_option, session, table
from app.store import executions as executions_sql


@click.group("executions")
def executions_group() -> None:
    """Inspect executions (follow one with ``tail``)."""


@executions_group.command("list")
@click.option("--trigger", default=None, help="Only this trigger's.")
@click.option("--status", type=click.Choice(executions_sql.STATUSES), default=None)
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@json_option
def list_command(trigger: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """Executions newest first, with status and exit code."""
    with session() as s:
        items = executions_sql.list_recent(
            s.db, trigger=trigger, status=status, since=None, until=None, after=None, limit=limit
        )

    def human() -> list[str]:
        rows = [["ID", "TRIGGER", "STATUS", "EXIT", "CREATED"]]
        for item in items:
            exit_code = "" if item["exit_code"] is None else str(item["exit_code"])
            rows.append(
                [item["id"], item["trigger"], item["status"], exit_code, item["created_at"]]
            )
        return table(rows)

    emit({"items": items}, as_json, human)
