"""The ``hookrunner`` command: migrate, manage admin tokens, serve."""

from __future__ import annotations

import os
import sys

import click

from app import __version__, auth
from app.commands.apply import apply_command, export_command
from app.commands.dry_run import test_command
from app.commands.executions import executions_group
from app.commands.import_hooks import import_hooks_command
from app.commands.replay import replay_command
from app.commands.tail import tail_command
from app.commands.triggers import triggers_group
from app.config import ConfigError, Settings, load_env_file, load_server_settings, load_settings
from app.store import Database, open_store
from app.store import admin_tokens as tokens_sql
from app.store.migrations import MigrationError, migrate

GUNICORN_CONFIG = "python:app.gunicorn_config"


def _settings() -> Settings:
    """The settings, or a one-line error naming the malformed variable."""
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def _database() -> Database:
    """The configured store; says on stderr which one, so two stores cannot go unnoticed."""
    settings = _settings()
    click.echo(f"store: {settings.store_description}", err=True)
    return open_store(settings)


@click.group()
@click.version_option(__version__, prog_name="hookrunner")
def main() -> None:
    """Hookrunner: verify, deduplicate, record and dispatch webhooks.

    Settings come from the environment and from ``.env`` in the working directory.
    """
    load_env_file()


@main.command("migrate")
def migrate_command() -> None:
    """Apply pending database migrations (a no-op when current)."""
    try:
        applied = migrate(_database())
    except MigrationError as exc:
        raise click.ClickException(str(exc)) from exc
    if applied:
        click.echo("applied migrations: " + ", ".join(f"{v:04d}" for v in applied))
    else:
        click.echo("database is up to date")


@main.command("create-token")
@click.option("--name", default="admin", show_default=True, help="A label for the token.")
@click.option(
    "--role",
    type=click.Choice(tokens_sql.ROLES),
    default="admin",
    show_default=True,
    help="admin: everything; viewer: read-only.",
)
def create_token_command(name: str, role: tokens_sql.Role) -> None:
    """Create an admin API token; it is printed once and stored only as SHA-256."""
    db = _database()
    migrate(db)
    click.echo(auth.create_token(db, name, role))


@main.command("list-tokens")
def list_tokens_command() -> None:
    """List admin tokens (ids and names; the tokens themselves are never stored)."""
    db = _database()
    migrate(db)
    for row in tokens_sql.list_all(db):
        state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "active"
        click.echo(
            f"{row['id']}  {row['name']}  {row['role']}  created {row['created_at']}  {state}"
        )


@main.command("revoke-token")
@click.argument("token_id")
def revoke_token_command(token_id: str) -> None:
    """Revoke an admin token by its id (see list-tokens)."""
    db = _database()
    migrate(db)
    if not tokens_sql.revoke(db, token_id):
        raise click.ClickException(f"no active token with id {token_id}")
    click.echo(f"revoked {token_id}")


@main.command("copy-store")
@click.option("--from", "source_url", required=True, help="DATABASE_URL of the installation.")
@click.option("--to", "target_url", required=True, help="DATABASE_URL of a new, empty store.")
def copy_store_command(source_url: str, target_url: str) -> None:
    """Copy an installation with its history to another store (e.g. SQLite to PostgreSQL).

    Stop Hookrunner first. The target is migrated and must be empty; row counts
    are verified at the end.
    """
    from app.store.copy import CopyError, copy_store

    try:
        source = open_store(load_settings(overrides={"database_url": source_url}))
        target = open_store(load_settings(overrides={"database_url": target_url}))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"copying {source.describe()} -> {target.describe()}", err=True)
    try:
        counts = copy_store(source, target, progress=lambda line: click.echo(line, err=True))
    except CopyError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        source.close()
        target.close()
    for table, count in counts.items():
        click.echo(f"{table}: {count}")
    click.echo("copied and verified")


@main.command("serve")
@click.option("--reload", is_flag=True, help="Restart workers when code changes (development).")
def serve_command(reload: bool) -> None:
    """Run Gunicorn with the installed config (gevent workers; migrations applied first).

    The same as ``gunicorn -c python:app.gunicorn_config`` in the working directory.
    """
    settings = _settings()
    try:
        server = load_server_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"store: {settings.store_description}", err=True)
    docs = "" if server.bind.startswith("unix:") else f" (API docs: {server.url}/docs/)"
    click.echo(f"listening on {server.url}{docs}", err=True)
    argv = [sys.executable, "-m", "gunicorn", "-c", GUNICORN_CONFIG]
    if reload:
        argv.append("--reload")
    os.execv(sys.executable, argv)  # noqa: S606 - fixed argv, no shell


@main.command("engine")
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=None,
    help="Engine processes to run (default: ENGINE_PROCESSES, or one per CPU).",
)
def engine_command(processes: int | None) -> None:
    """Run engine processes alone: claim and run executions, serve no HTTP.

    For layouts where web servers and engines run on different hosts or units
    (give those web servers ENGINE_ENABLED=0). SIGTERM drains running
    executions within GUNICORN_GRACEFUL_TIMEOUT; SIGHUP restarts the engines.
    """
    settings = _settings()
    click.echo(f"store: {settings.store_description}", err=True)
    from app.execution.supervisor import main as supervise

    argv = [] if processes is None else ["--processes", str(processes)]
    raise SystemExit(supervise(argv))


main.add_command(apply_command)
main.add_command(export_command)
main.add_command(triggers_group)
main.add_command(executions_group)
main.add_command(tail_command)
main.add_command(replay_command)
main.add_command(test_command)
main.add_command(import_hooks_command)


def _plain_help(command: click.Command) -> None:
    """Help texts come from docstrings, which mark literals ``like this``: show them
    'like this' at the terminal (and in every subcommand's help)."""
    for attribute in ("help", "short_help"):
        text = getattr(command, attribute)
        if text:
            setattr(command, attribute, text.replace("``", "'"))
    for param in command.params:
        if isinstance(param, click.Option) and param.help:
            param.help = param.help.replace("``", "'")
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _plain_help(sub)


_plain_help(main)
