"""Settings from the environment: defaults, validation that fails loudly, the data home."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from app.config import ConfigError, describe_store, load_env_file, load_settings


def test_defaults_are_safe() -> None:
    settings = load_settings(env={})
    assert settings.database_url == "sqlite:///hookrunner.db"
    assert settings.sqlite_path == str(
        Path.home() / ".local" / "share" / "hookrunner" / "hookrunner.db"
    )
    assert settings.log_format == "json"
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.allow_private_targets is False
    assert settings.admin_token is None


def test_values_are_parsed_and_typed() -> None:
    settings = load_settings(
        env={
            "MAX_BODY_BYTES": "2048",
            "ALLOW_PRIVATE_TARGETS": "true",
            "LOG_FORMAT": "TEXT",
            "LOG_LEVEL": "debug",
            "SENTRY_TRACES_SAMPLE_RATE": "0.25",
            "SQLITE_SYNCHRONOUS": "full",
        }
    )
    assert settings.max_body_bytes == 2048
    assert settings.allow_private_targets is True
    assert settings.log_format == "text"
    assert settings.log_level == "DEBUG"
    assert settings.sentry_traces_sample_rate == 0.25
    assert settings.sqlite_synchronous == "FULL"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAX_BODY_BYTES", "lots"),
        ("MAX_BODY_BYTES", "0"),
        ("ALLOW_PRIVATE_TARGETS", "maybe"),
        ("LOG_FORMAT", "xml"),
        ("LOG_LEVEL", "LOUD"),
        ("SENTRY_TRACES_SAMPLE_RATE", "2"),
        ("EXECUTION_POOL_SIZE", "-1"),
        ("DATABASE_URL", "mysql://localhost/db"),
        ("HOOKRUNNER_HOME", "relative/dir"),
    ],
)
def test_malformed_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings(env={name: value})


def test_unknown_override_is_refused() -> None:
    with pytest.raises(ConfigError, match="nonsense"):
        load_settings(env={}, overrides={"nonsense": 1})


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"HOOKRUNNER_HOME": "/srv/hr"}, "/srv/hr/hookrunner.db"),
        ({"XDG_DATA_HOME": "/xdg"}, "/xdg/hookrunner/hookrunner.db"),
        ({"HOOKRUNNER_HOME": "/srv/hr", "XDG_DATA_HOME": "/xdg"}, "/srv/hr/hookrunner.db"),
        ({"HOOKRUNNER_HOME": "/srv/hr", "DATABASE_URL": "sqlite:///sub/x.db"}, "/srv/hr/sub/x.db"),
        ({"HOOKRUNNER_HOME": "/srv/hr", "DATABASE_URL": "sqlite:////var/x.db"}, "/var/x.db"),
    ],
)
def test_the_sqlite_path_never_depends_on_the_working_directory(
    env: dict[str, str], expected: str
) -> None:
    assert load_settings(env=env).sqlite_path == expected


def test_store_description_hides_a_password() -> None:
    described = describe_store("postgresql://hook:s3cret-pw@db.internal:5432/hookrunner")
    assert "s3cret-pw" not in described
    assert described == "postgresql://hook:***@db.internal:5432/hookrunner"
    assert describe_store("sqlite:////var/x.db") == "sqlite:////var/x.db"


def test_an_unsupported_store_url_is_refused_without_its_password() -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL") as refused:
        load_settings(env={"DATABASE_URL": "mysql://hook:s3cret-pw@db/hookrunner"})
    assert "s3cret-pw" not in str(refused.value)


def test_a_postgresql_url_is_accepted_and_described_without_its_password() -> None:
    settings = load_settings(env={"DATABASE_URL": "postgresql://hook:s3cret-pw@db/hookrunner"})
    assert settings.database_dialect == "postgresql"
    assert "s3cret-pw" not in settings.store_description


def test_a_short_session_secret_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(env={"SESSION_SECRET": "hunter2hunter2"})
    assert "SESSION_SECRET must be at least 32 characters" in str(refused.value)
    assert "hunter2" not in str(refused.value)
    long_enough = "k" * 32
    assert load_settings(env={"SESSION_SECRET": long_enough}).session_secret == long_enough
    assert load_settings(env={"SESSION_SECRET": ""}).session_secret is None  # .env.example


def test_a_line_of_the_env_file_that_cannot_be_parsed_is_reported_with_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "HOOKRUNNER_TEST_GOOD=1\nthis is not an assignment\nHOOKRUNNER_TEST_NEXT=2\n"
    )
    for name in ("HOOKRUNNER_TEST_GOOD", "HOOKRUNNER_TEST_NEXT"):
        monkeypatch.setenv(name, "")  # recorded as unset: teardown removes what the file sets
        monkeypatch.delenv(name)
    with caplog.at_level("WARNING", logger="dotenv.main"):
        assert load_env_file(tmp_path) == env_file
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "dotenv.main"]
    assert warning.startswith(f"{env_file}: ")
    assert "line 2" in warning
    # The lines around it are still read; later loads are not prefixed again.
    assert (os.environ["HOOKRUNNER_TEST_GOOD"], os.environ["HOOKRUNNER_TEST_NEXT"]) == ("1", "2")
    assert not logging.getLogger("dotenv.main").filters
