from __future__ import annotations

import pytest

from app.config import ConfigError, load_settings


def test_defaults_are_safe() -> None:
    settings = load_settings(env={})
    assert settings.database_url == "sqlite:///instance/hookrunner.db"
    assert settings.sqlite_path == "instance/hookrunner.db"
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
    ],
)
def test_malformed_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings(env={name: value})


def test_unknown_override_is_refused() -> None:
    with pytest.raises(ConfigError, match="nonsense"):
        load_settings(env={}, overrides={"nonsense": 1})
