"""Typed settings read from the environment.

Every setting has a safe default and is parsed once at start-up; a malformed
value raises :class:`ConfigError` naming the variable, so the process stops
with a clear message instead of misbehaving later. ``.env.example`` documents
each variable. Tests pass overrides (field name -> value) to ``create_app``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

LOG_FORMATS = ("json", "text")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
SYNCHRONOUS_MODES = ("NORMAL", "FULL")


class ConfigError(ValueError):
    """A setting is malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///instance/hookrunner.db"
    admin_token: str | None = None
    log_format: str = "json"
    log_level: str = "INFO"
    sentry_dsn: str | None = None
    sentry_environment: str = "production"
    sentry_traces_sample_rate: float = 0.0
    sentry_release: str | None = None
    max_body_bytes: int = 1024 * 1024
    sqlite_synchronous: str = "NORMAL"
    sqlite_busy_timeout_ms: int = 5000
    execution_pool_size: int = 4
    allow_private_targets: bool = False
    alert_webhook_url: str | None = None
    breaker_fail_max: int = 5
    breaker_reset_seconds: float = 60.0
    execution_lease_seconds: int = 30
    scheduler_enabled: bool = True
    scheduler_interval_seconds: int | None = None  # every job at this interval (drills, tests)
    engine_enabled: bool = True
    dedup_window_seconds: int = 7 * 24 * 3600
    dedup_payload_window_seconds: int = 10
    database_pool_size: int = 10  # PostgreSQL connections per process
    database_connect_timeout_seconds: int = 5

    @property
    def database_dialect(self) -> str:
        """``sqlite`` or ``postgresql``, from ``database_url``; raises ConfigError otherwise."""
        if self.database_url.startswith("sqlite:///"):
            return "sqlite"
        if self.database_url.startswith(("postgresql://", "postgres://")):
            return "postgresql"
        raise ConfigError(
            "DATABASE_URL must be sqlite:///<path> or postgresql://user@host:port/dbname,"
            f" got {self.database_url.partition(':')[0]!r}..."
        )

    @property
    def sqlite_path(self) -> str:
        """Filesystem path of the SQLite database named by ``database_url``."""
        if self.database_dialect != "sqlite":
            raise ConfigError("DATABASE_URL names a PostgreSQL database, not a SQLite file")
        return self.database_url[len("sqlite:///") :]


def _env_str(env: Mapping[str, str], name: str, default: str | None) -> str | None:
    value = env.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def _env_int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = _env_str(env, name, None)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _env_float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = _env_str(env, name, None)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def _env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _env_str(env, name, None)
    if raw is None:
        return default
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def _env_choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = _env_str(env, name, default) or default
    value = raw.upper() if choices[0].isupper() else raw.lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return value


def load_settings(
    env: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Read settings from ``env`` (default ``os.environ``), then apply overrides."""
    env = os.environ if env is None else env
    d = Settings()
    settings = Settings(
        database_url=_env_str(env, "DATABASE_URL", d.database_url) or d.database_url,
        admin_token=_env_str(env, "ADMIN_TOKEN", None),
        log_format=_env_choice(env, "LOG_FORMAT", d.log_format, LOG_FORMATS),
        log_level=_env_choice(env, "LOG_LEVEL", d.log_level, LOG_LEVELS),
        sentry_dsn=_env_str(env, "SENTRY_DSN", None),
        sentry_environment=_env_str(env, "SENTRY_ENVIRONMENT", d.sentry_environment)
        or d.sentry_environment,
        sentry_traces_sample_rate=_env_float(
            env, "SENTRY_TRACES_SAMPLE_RATE", d.sentry_traces_sample_rate, 0.0, 1.0
        ),
        sentry_release=_env_str(env, "SENTRY_RELEASE", None),
        max_body_bytes=_env_int(env, "MAX_BODY_BYTES", d.max_body_bytes, minimum=1),
        sqlite_synchronous=_env_choice(
            env, "SQLITE_SYNCHRONOUS", d.sqlite_synchronous, SYNCHRONOUS_MODES
        ),
        sqlite_busy_timeout_ms=_env_int(
            env, "SQLITE_BUSY_TIMEOUT_MS", d.sqlite_busy_timeout_ms, minimum=0
        ),
        execution_pool_size=_env_int(env, "EXECUTION_POOL_SIZE", d.execution_pool_size, 1),
        allow_private_targets=_env_bool(env, "ALLOW_PRIVATE_TARGETS", d.allow_private_targets),
        alert_webhook_url=_env_str(env, "ALERT_WEBHOOK_URL", None),
        breaker_fail_max=_env_int(env, "BREAKER_FAIL_MAX", d.breaker_fail_max, 1),
        breaker_reset_seconds=_env_float(
            env, "BREAKER_RESET_SECONDS", d.breaker_reset_seconds, 0.01, 86400.0
        ),
        execution_lease_seconds=_env_int(
            env, "EXECUTION_LEASE_SECONDS", d.execution_lease_seconds, 2
        ),
        scheduler_enabled=_env_bool(env, "SCHEDULER_ENABLED", d.scheduler_enabled),
        engine_enabled=_env_bool(env, "ENGINE_ENABLED", d.engine_enabled),
        scheduler_interval_seconds=(
            _env_int(env, "SCHEDULER_INTERVAL_SECONDS", 0, minimum=1)
            if _env_str(env, "SCHEDULER_INTERVAL_SECONDS", None)
            else None
        ),
        dedup_window_seconds=_env_int(env, "DEDUP_WINDOW_SECONDS", d.dedup_window_seconds, 1),
        dedup_payload_window_seconds=_env_int(
            env, "DEDUP_PAYLOAD_WINDOW_SECONDS", d.dedup_payload_window_seconds, 1
        ),
        database_pool_size=_env_int(env, "DATABASE_POOL_SIZE", d.database_pool_size, 1),
        database_connect_timeout_seconds=_env_int(
            env, "DATABASE_CONNECT_TIMEOUT_SECONDS", d.database_connect_timeout_seconds, 1
        ),
    )
    if overrides:
        unknown = set(overrides) - {f.name for f in dataclasses.fields(Settings)}
        if unknown:
            raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
        settings = dataclasses.replace(settings, **overrides)
    settings.database_dialect  # noqa: B018 - validates DATABASE_URL at start-up
    return settings
