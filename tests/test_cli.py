from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from app.auth import digest
from app.cli import main
from app.store import SQLiteDatabase


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
    token = result.output.strip()
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
