"""The hookrunner command line: migrate, tokens, version, store reporting, copy-store."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from app import create_app
from app.auth import digest
from app.cli import main
from app.store import SQLiteDatabase, get_db


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    return CliRunner()


def test_migrate_then_migrate_again(runner: CliRunner) -> None:
    first = runner.invoke(main, ["migrate"])
    assert first.exit_code == 0, first.output
    assert "applied migrations: 0001" in first.output
    second = runner.invoke(main, ["migrate"])
    assert second.exit_code == 0
    assert "up to date" in second.output


def test_create_token_prints_it_once_and_stores_a_digest(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["create-token", "--name", "deploy-bot"])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert len(token) >= 43  # 32 random bytes, URL-safe base64
    with SQLiteDatabase(str(tmp_path / "cli.db")).read() as conn:
        row = conn.execute("SELECT name, token_sha256 FROM admin_tokens").fetchone()
    assert row["name"] == "deploy-bot"
    assert row["token_sha256"] == digest(token)
    listing = runner.invoke(main, ["list-tokens"])
    assert "deploy-bot" in listing.output
    assert token not in listing.output


def test_revoke_unknown_token_fails(runner: CliRunner) -> None:
    result = runner.invoke(main, ["revoke-token", "nope"])
    assert result.exit_code != 0
    assert "no active token" in result.output


def test_malformed_setting_stops_with_a_clear_message(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://nope")
    result = runner.invoke(main, ["migrate"])
    assert result.exit_code != 0
    assert "DATABASE_URL" in result.output


def test_every_command_says_which_store_it_used(runner: CliRunner, tmp_path: Path) -> None:
    for args in (["migrate"], ["create-token"], ["list-tokens"]):
        result = runner.invoke(main, args)
        assert result.exit_code == 0, result.output
        assert f"store: sqlite {tmp_path / 'cli.db'}" in result.stderr
        assert "store:" not in result.stdout


def test_a_token_created_anywhere_works_for_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default store is the same file whichever directory a command starts in."""
    for name in ("DATABASE_URL", "HOOKRUNNER_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    somewhere, elsewhere = tmp_path / "somewhere", tmp_path / "elsewhere"
    somewhere.mkdir()
    elsewhere.mkdir()

    monkeypatch.chdir(somewhere)
    created = CliRunner().invoke(main, ["create-token", "--name", "ops"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    expected = tmp_path / "user" / ".local" / "share" / "hookrunner" / "hookrunner.db"
    assert f"store: sqlite {expected}" in created.stderr

    monkeypatch.chdir(elsewhere)
    app = create_app({"scheduler_enabled": False, "engine_enabled": False})
    try:
        response = app.test_client().get(
            "/admin/triggers", headers={"Authorization": f"Bearer {token}"}
        )
    finally:
        with app.app_context():
            get_db().close()
    assert response.status_code == 200
    assert list(somewhere.iterdir()) == list(elsewhere.iterdir()) == []


def test_help_shows_no_markup() -> None:
    """Docstrings mark literals ``so``; the terminal shows them 'so', in every help page."""
    import click

    def pages(group: click.Group, prefix: list[str]) -> list[list[str]]:
        found = [prefix]
        for name, command in group.commands.items():
            found += (
                pages(command, [*prefix, name])
                if hasattr(command, "commands")
                else [[*prefix, name]]
            )
        return found

    for args in pages(main, []):
        shown = CliRunner().invoke(main, [*args, "--help"])
        assert shown.exit_code == 0, args
        assert "``" not in shown.output, args
