"""``hookrunner import-hooks``: an adnanh/webhook hooks file as a Hookrunner triggers file.

The triggers file goes to stdout (YAML, or JSON with ``--json``), the report
(one block per hook: its trigger name, the differences that remain, why a hook
could not be converted) to stderr. Exit status: 0 when every hook was
converted; 1 when at least one was not (the file on stdout then holds the
others, so that ``import-hooks ... > triggers.yaml && hookrunner apply -f
triggers.yaml`` stops before applying a partial conversion); 2 when the hooks
file cannot be read at all (nothing on stdout). See app.triggers.hooks_import.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from app.triggers.hooks_import import (
    EVERY_HOOK,
    HooksFileError,
    convert_hooks,
    read_hooks,
    render_triggers,
    report_lines,
)


@click.command("import-hooks")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--template",
    is_flag=True,
    help='The file is a -template hooks file: {{ getenv "NAME" }} becomes ${NAME}.',
)
@click.option("--json", "as_json", is_flag=True, help="Write the triggers file as JSON.")
def import_hooks_command(path: Path, template: bool, as_json: bool) -> None:
    """Convert an adnanh/webhook hooks file (JSON or YAML) into a triggers file on stdout.

    Each hook keeps its id as the trigger name (made valid where needed) and
    answers as webhook did. The report is on stderr; the exit status is 1 when
    a hook could not be converted, 2 when the file cannot be read.
    """
    try:
        text = path.read_text(encoding="utf-8")
        hooks = read_hooks(text, template=template)
    except (OSError, UnicodeDecodeError) as exc:
        click.echo(f"Error: cannot read {path}: {exc}", err=True)
        raise SystemExit(2) from None
    except HooksFileError as exc:
        click.echo(f"Error: {path}: " + "; ".join(exc.problems), err=True)
        raise SystemExit(2) from None
    result = convert_hooks(hooks)
    click.echo(render_triggers(result, source=path.name, as_json=as_json), nl=False)
    if as_json:
        report = [report.as_dict() for report in result.reports]
        every = list(EVERY_HOOK) if result.documents else []
        click.echo(json.dumps({"hooks": report, "every_hook": every}, indent=2), err=True)
    else:
        for line in report_lines(result):
            click.echo(line, err=True)
    if result.failed:
        raise SystemExit(1)
