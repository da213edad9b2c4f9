"""What the subcommands share: opening the store, domain errors as CLI errors, output."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import click

from app.config import ConfigError, Settings, load_settings
from app.errors import AppError
from app.ingest.dispatch import ExecutionService
from app.live.notifier import Notifier
from app.store import Database, open_store
from app.store.migrations import MigrationError, migrate
from app.triggers.admin import TriggerAdmin
from app.triggers.registry import TriggerRegistry

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON (machine output).")


@dataclass(frozen=True)
class Session:
    """The store and the services a command uses (no engine: the server's engines run)."""

    settings: Settings
    db: Database
    admin: TriggerAdmin
    triggers: TriggerRegistry
    service: ExecutionService


@contextmanager
def session() -> Iterator[Session]:
    """Open the configured store (migrated), say which on stderr, close it at the end.

    What the command writes is announced to running servers as it happens (see
    :func:`_publishing_notifier`), so they act on it without waiting for a poll.

    Domain errors raised inside become a one-line error and exit status 1.
    """
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"store: {settings.store_description}", err=True)
    db = open_store(settings)
    try:
        migrate(db)
        notifier = _publishing_notifier(db)
        yield Session(
            settings=settings,
            db=db,
            admin=TriggerAdmin(db, notifier),
            triggers=TriggerRegistry(db),
            service=ExecutionService(db, settings, notifier),
        )
    except MigrationError as exc:
        raise click.ClickException(str(exc)) from exc
    except AppError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from exc
    finally:
        db.close()


def _publishing_notifier(db: Database) -> Notifier:
    """A notifier that tells running servers at once what this command wrote.

    It only publishes (a command listens to nobody): a replay wakes the engines
    of every process and host, an ``apply`` refreshes their cached triggers.
    Closing the store sends what is still pending.
    """
    backend = db.notification_backend()
    if backend is not None:
        backend.start(lambda _topic: None, listen=False)
    return Notifier(backend)


def emit(data: Any, as_json: bool, human: Callable[[], list[str]]) -> None:
    """Print ``data`` as JSON, or the lines ``human()`` makes of it."""
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=False))
        return
    for line in human():
        click.echo(line)


def table(rows: list[list[str]]) -> list[str]:
    """Rows as left-aligned columns separated by two spaces."""
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
