"""``hookrunner apply`` and ``hookrunner export``: triggers as code (see app.triggers.apply)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from app.commands.common import emit, json_option, session
from app.triggers.apply import execute, plan
from app.triggers.files import TriggersFileError, export_documents, load_documents, render


@click.command("apply")
@click.option(
    "-f",
    "--file",
    "path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="A YAML or JSON file of trigger documents.",
)
@click.option("--prune", is_flag=True, help="Delete stored triggers that the file leaves out.")
@click.option("--dry-run", is_flag=True, help="Print the changes without making them.")
@json_option
def apply_command(path: Path, prune: bool, dry_run: bool, as_json: bool) -> None:
    """Create or update each trigger of the file by name (idempotent).

    ``${NAME}`` in the file is read from the environment. Every document is
    validated first: when one is invalid, or a variable is missing, nothing changes.
    """
    with session() as s:
        try:
            planned = plan(s.admin, load_documents(path, os.environ), prune=prune)
        except TriggersFileError as exc:
            raise click.ClickException(
                f"{path}: nothing applied:\n  " + "\n  ".join(exc.problems)
            ) from None
        if not dry_run:
            execute(s.admin, planned)
        verb = "would change" if dry_run else "changed"

        def human() -> list[str]:
            return [*planned.lines(), f"{verb} {planned.changes} trigger(s)"]

        emit(planned.summary() | {"dry_run": dry_run}, as_json, human)


@click.command("export")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write to this file (default: stdout).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["yaml", "json"]),
    default=None,
    help="Default: json for a .json output file, else yaml.",
)
def export_command(output: Path | None, fmt: str | None) -> None:
    """Write every trigger as a file ``apply`` reads; secrets become ``${...}`` placeholders."""
    as_json = (fmt or ("json" if output and output.suffix.lower() == ".json" else "yaml")) == "json"
    with session() as s:
        documents = [
            doc for name in (v["name"] for v in s.admin.list()) if (doc := s.admin.stored(name))
        ]
    exported, variables = export_documents(documents)
    text = render(exported, variables, as_json=as_json)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"exported {len(exported)} trigger(s) to {output}", err=True)
    if variables:
        click.echo(
            "secrets left out; set these variables before applying: " + ", ".join(variables),
            err=True,
        )
