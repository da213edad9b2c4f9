"""``hookrunner test <trigger>``: the dry run of a sample request (see app.ingest.dry_run)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from pydantic import ValidationError

from app.commands.common import emit, json_option, session
from app.ingest.dry_run import DryRunRequest, dry_run


def _body(value: str | None) -> str | None:
    """``@path`` reads a file, ``-`` stdin; anything else is the body itself."""
    if value is None:
        return None
    if value == "-":
        return sys.stdin.read()
    if value.startswith("@"):
        try:
            return Path(value[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise click.BadParameter(f"cannot read {value[1:]}: {exc.strerror}") from None
    return value


def _pairs(values: tuple[str, ...], separator: str, what: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        name, found, text = value.partition(separator)
        if not found or not name.strip():
            raise click.BadParameter(f"{what} must be NAME{separator}VALUE, got {value!r}")
        pairs[name.strip()] = text.strip() if separator == ":" else text
    return pairs


@click.command("test")
@click.argument("trigger")
@click.option("--body", help="The request body: text, @file, or - for stdin.")
@click.option("-H", "--header", "headers", multiple=True, help="'Name: value' (repeatable).")
@click.option("--query", "query", multiple=True, help="name=value (repeatable).")
@click.option("--method", default="POST", show_default=True)
@json_option
def test_command(
    trigger: str,
    body: str | None,
    headers: tuple[str, ...],
    query: tuple[str, ...],
    method: str,
    as_json: bool,
) -> None:
    """Dry run: what the trigger would do with this request. Writes and runs nothing.

    Exit status 0 when the request would be accepted, 2 otherwise.
    """
    try:
        sample = DryRunRequest(
            method=method.upper(),
            headers=_pairs(headers, ":", "--header"),
            query=dict(_pairs(query, "=", "--query")),
            body=_body(body),
        )
    except ValidationError:
        raise click.BadParameter(f"not an HTTP method: {method!r}") from None
    with session() as s:
        report = dry_run(s.service, s.triggers.get(trigger), sample, request_id=None)
    emit(
        report,
        as_json,
        lambda: [f"would: {report['would']}", *json.dumps(report, indent=2).splitlines()],
    )
    if report["would"] != "accept":
        raise SystemExit(2)
