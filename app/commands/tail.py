"""``hookrunner tail <execution-id>``: follow an execution's output until it ends.

Works across processes and hosts: it polls the store (every
:data:`POLL_SECONDS` while nothing new arrives), the source of truth for output
and status, wherever the execution runs. Lines are printed as stored: stdout
lines on stdout, stderr and Hookrunner's own (``system``) lines on stderr, the
latter prefixed ``hookrunner:``. When the execution has ended and every line is
printed, the command exits with the execution's exit code (a command killed by
signal N gives 128+N; without an exit code: 0 when it succeeded, else 1).
"""

from __future__ import annotations

import json
import sys
import time

import click

from app.commands.common import json_option, session
from app.store import execution_logs, executions
from app.store.executions import FINAL_STATUSES, ExecutionRow

POLL_SECONDS = 0.25
BATCH = 1000


def exit_status(row: ExecutionRow) -> int:
    """The process exit status that stands for how ``row`` ended."""
    if row.exit_code is not None:
        return row.exit_code if row.exit_code >= 0 else min(128 - row.exit_code, 255)
    return 0 if row.status == "succeeded" else 1


def _print(line: dict[str, object], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"event": "log", **line}))
    elif line["stream"] == "stdout":
        click.echo(str(line["line"]))
    elif line["stream"] == "stderr":
        click.echo(str(line["line"]), err=True)
    else:
        click.echo(f"hookrunner: {line['line']}", err=True)


@click.command("tail")
@click.argument("execution_id")
@json_option
def tail_command(execution_id: str, as_json: bool) -> None:
    """Print an execution's output as it happens; exit with its exit code."""
    with session() as s:
        last = 0
        while True:
            row = executions.get(s.db, execution_id)  # NotFound: a one-line error
            lines = execution_logs.after(s.db, execution_id, last, BATCH)
            for line in lines:
                _print(line, as_json)
                last = int(line["seq"])
            if lines:
                sys.stdout.flush()
                continue
            if row.status in FINAL_STATUSES:
                break
            time.sleep(POLL_SECONDS)
    status = exit_status(row)
    if as_json:
        click.echo(json.dumps({"event": "end", "status": row.status, "exit_code": row.exit_code}))
    else:
        click.echo(f"hookrunner: execution {row.status} (exit {status})", err=True)
    raise SystemExit(status)
