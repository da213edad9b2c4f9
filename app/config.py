"""Typed settings read from the environment.

Every setting has a safe default and is parsed once at start-up; a malformed
value raises :class:`ConfigError` naming the variable and the expected form, so
the process stops with a clear message instead of misbehaving later.
``.env.example`` documents each variable. Tests pass overrides (field name ->
value) to ``create_app``.

Where the data is: ``HOOKRUNNER_HOME`` (an absolute path; default
``$XDG_DATA_HOME/hookrunner``, else ``~/.local/share/hookrunner``). The default
store is ``hookrunner.db`` there, and a relative SQLite path in ``DATABASE_URL``
is relative to it, never to the working directory, so every entry point started
from anywhere uses the same database.

``.env`` in the working directory is read by every entry point through
:func:`load_env_file`; :func:`load_server_settings` parses the ``GUNICORN_*``
variables. Only the standard library and python-dotenv are imported here: the
Gunicorn config imports this module in the master process, before gevent
patches the workers.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dotenv import load_dotenv

LOG_FORMATS = ("json", "text")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
SYNCHRONOUS_MODES = ("NORMAL", "FULL")


class ConfigError(ValueError):
    """A setting is malformed; the message names the variable."""


ENV_FILE = ".env"
DEFAULT_DATABASE_URL = "sqlite:///hookrunner.db"  # relative: inside HOOKRUNNER_HOME


def load_env_file(directory: Path | None = None) -> Path | None:
    """Load ``.env`` from ``directory`` (default: the working directory) if it exists.

    Every entry point (the CLI, the Gunicorn config, ``run.py``) calls this one
    function, so they all read the same file. Variables already set in the
    environment win over the file. Returns the file loaded, or None.
    """
    path = (directory or Path.cwd()) / ENV_FILE
    if not path.is_file():
        return None
    # python-dotenv warns of a line it cannot parse (and skips it) by line number only.
    dotenv_log = logging.getLogger("dotenv.main")
    naming = _PrefixMessages(f"{path}: ")
    dotenv_log.addFilter(naming)
    try:
        load_dotenv(path, override=False)
    finally:
        dotenv_log.removeFilter(naming)
    return path


class _PrefixMessages(logging.Filter):
    """Put ``prefix`` (the file's path) before each message of the logger it filters."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = f"{self.prefix}{record.msg}"
        return True


def hookrunner_home(env: Mapping[str, str] | None = None) -> Path:
    """The data directory: ``HOOKRUNNER_HOME``, else the XDG data home's ``hookrunner``."""
    env = os.environ if env is None else env
    raw = _env_str(env, "HOOKRUNNER_HOME", None)
    if raw is not None:
        home = Path(raw).expanduser()
        if not home.is_absolute():
            raise ConfigError(f"HOOKRUNNER_HOME must be an absolute path, got {raw!r}")
        return home
    xdg = _env_str(env, "XDG_DATA_HOME", None)
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "hookrunner"


def describe_store(database_url: str) -> str:
    """``database_url`` fit for a log line: any password in it replaced by ``***``."""
    parts = urlsplit(database_url)
    if parts.password is None:
        return database_url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))


@dataclass(frozen=True)
class Settings:
    home: str = ""  # HOOKRUNNER_HOME, resolved by load_settings
    database_url: str = DEFAULT_DATABASE_URL
    admin_token: str | None = None
    log_format: str = "json"
    log_level: str = "INFO"
    sentry_dsn: str | None = None
    sentry_environment: str = "production"
    sentry_traces_sample_rate: float = 0.0
    sentry_release: str | None = None
    max_body_bytes: int = 1024 * 1024
    body_idle_seconds: float = 30.0  # silence allowed while a request body is read
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
    trusted_proxies: tuple[str, ...] = ()  # CIDRs whose X-Forwarded-For/Forwarded is believed
    triggers_file: str | None = None  # a triggers-as-code file applied at start-up
    alert_signing_secret: str | None = None  # signs failure notifications to ALERT_WEBHOOK_URL
    hooks_url_prefix: str | None = None  # also serve /<prefix>/<hook id> (adnanh/webhook's URLs)
    response_wait_max_seconds: int = 30  # the longest a response.mode "wait" answer waits
    session_secret: str | None = None  # signs dashboard sessions; unset: one kept in the store
    session_max_age_seconds: int = 12 * 3600
    session_cookie_secure: bool = False  # Secure cookies even over plain HTTP (behind TLS proxies)

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
        """Absolute path of the SQLite database named by ``database_url``.

        ``sqlite:////abs/path.db`` is used as is; ``sqlite:///name.db`` is
        ``name.db`` inside :attr:`home`; ``sqlite:///:memory:`` is in memory.
        """
        if self.database_dialect != "sqlite":
            raise ConfigError("DATABASE_URL names a PostgreSQL database, not a SQLite file")
        path = self.database_url[len("sqlite:///") :]
        if path == ":memory:" or os.path.isabs(path):
            return path
        return os.path.join(self.home or str(hookrunner_home()), path)

    @property
    def store_description(self) -> str:
        """Which store this is, without credentials (printed by every CLI command)."""
        if self.database_dialect == "sqlite":
            return f"sqlite {self.sqlite_path}"
        return describe_store(self.database_url)


def _env_str(env: Mapping[str, str], name: str, default: str | None) -> str | None:
    value = env.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def _env_int(
    env: Mapping[str, str], name: str, default: int, minimum: int = 0, unit: str = ""
) -> int:
    raw = _env_str(env, name, None)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        form = f"a whole number of {unit} (e.g. {default})" if unit else "an integer"
        raise ConfigError(f"{name} must be {form}, got {raw!r}") from None
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


MIN_SECRET_CHARS = 32


def _env_secret(env: Mapping[str, str], name: str) -> str | None:
    """A signing key: unset, or at least :data:`MIN_SECRET_CHARS` characters (never echoed)."""
    value = _env_str(env, name, None)
    if value is not None and len(value) < MIN_SECRET_CHARS:
        raise ConfigError(
            f"{name} must be at least {MIN_SECRET_CHARS} characters (it has {len(value)});"
            " make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return value


def _env_cidrs(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list of IPv4/IPv6 networks, normalised (``10.0.0.1`` is ``/32``)."""
    raw = _env_str(env, name, None)
    if raw is None:
        return ()
    networks = []
    for item in (part.strip() for part in raw.split(",")):
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ConfigError(
                f"{name} must be a comma-separated list of IP networks"
                f" (e.g. 10.0.0.0/8,::1/128), got {item!r}"
            ) from None
    return tuple(networks)


_URL_PREFIX = re.compile(r"^[A-Za-z0-9._~-]+(?:/[A-Za-z0-9._~-]+)*$")
_RESERVED_PREFIXES = ("webhooks", "admin", "docs", "metrics", "openapi.json")


def _env_url_prefix(env: Mapping[str, str], name: str) -> str | None:
    """A URL path prefix such as ``hooks`` (slashes around it dropped); None when unset."""
    raw = _env_str(env, name, None)
    if raw is None or not raw.strip("/ "):
        return None
    prefix = raw.strip().strip("/")
    if not _URL_PREFIX.match(prefix) or prefix.split("/")[0] in _RESERVED_PREFIXES:
        raise ConfigError(
            f"{name} must be a URL path prefix such as hooks (not webhooks, admin, docs"
            f" or metrics), got {raw!r}"
        )
    return prefix


def load_settings(
    env: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Read settings from ``env`` (default ``os.environ``), then apply overrides."""
    env = os.environ if env is None else env
    d = Settings()
    settings = Settings(
        home=str(hookrunner_home(env)),
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
        max_body_bytes=_env_int(env, "MAX_BODY_BYTES", d.max_body_bytes, 1, unit="bytes"),
        body_idle_seconds=_env_float(env, "BODY_IDLE_SECONDS", d.body_idle_seconds, 0.1, 3600),
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
        trusted_proxies=_env_cidrs(env, "TRUSTED_PROXIES"),
        triggers_file=_env_str(env, "TRIGGERS_FILE", None),
        alert_signing_secret=_env_str(env, "ALERT_SIGNING_SECRET", None),
        hooks_url_prefix=_env_url_prefix(env, "HOOKS_URL_PREFIX"),
        response_wait_max_seconds=_env_int(
            env, "RESPONSE_WAIT_MAX_SECONDS", d.response_wait_max_seconds, 1, unit="seconds"
        ),
        session_secret=_env_secret(env, "SESSION_SECRET"),
        session_max_age_seconds=_env_int(
            env, "SESSION_MAX_AGE_SECONDS", d.session_max_age_seconds, 60, unit="seconds"
        ),
        session_cookie_secure=_env_bool(env, "SESSION_COOKIE_SECURE", d.session_cookie_secure),
    )
    if overrides:
        unknown = set(overrides) - {f.name for f in dataclasses.fields(Settings)}
        if unknown:
            raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
        settings = dataclasses.replace(settings, **overrides)
    settings.database_dialect  # noqa: B018 - validates DATABASE_URL at start-up
    return settings


def cpu_count() -> int:
    """The CPUs this process may run on (the defaults for web workers and engines)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ServerSettings:
    """How the server runs: Gunicorn's ``GUNICORN_*`` and the engine processes.

    Read by :mod:`app.gunicorn_config` (and ``hookrunner engine``). ``workers``
    web workers ingest and serve the API and live streams; ``engine_processes``
    engine processes, started and supervised next to them, run the executions.
    ``engine_processes = 0`` runs an engine inside each web worker instead (one
    process for tiny installs).
    """

    bind: str = "127.0.0.1:8000"
    workers: int = field(default_factory=cpu_count)
    engine_processes: int = field(default_factory=cpu_count)
    worker_connections: int = 2000
    timeout: int = 30
    graceful_timeout: int = 30

    @property
    def url(self) -> str:
        """Where the server listens, for people (``http://host:port`` or ``unix:path``)."""
        return self.bind if self.bind.startswith("unix:") else f"http://{self.bind}"


def _env_bind(env: Mapping[str, str], name: str, default: str) -> str:
    raw = _env_str(env, name, default) or default
    if raw.startswith("unix:") and len(raw) > len("unix:"):
        return raw
    host, _, port = raw.rpartition(":")
    if host and port.isdigit() and 0 < int(port) < 65536:
        return raw
    raise ConfigError(f"{name} must be HOST:PORT (e.g. 127.0.0.1:8000) or unix:PATH, got {raw!r}")


def load_server_settings(env: Mapping[str, str] | None = None) -> ServerSettings:
    """Read the ``GUNICORN_*`` variables from ``env`` (default ``os.environ``)."""
    env = os.environ if env is None else env
    d = ServerSettings()
    return ServerSettings(
        bind=_env_bind(env, "GUNICORN_BIND", d.bind),
        workers=_env_int(env, "GUNICORN_WORKERS", d.workers, 1, unit="worker processes"),
        engine_processes=_env_int(
            env, "ENGINE_PROCESSES", d.engine_processes, 0, unit="engine processes"
        ),
        worker_connections=_env_int(
            env, "GUNICORN_WORKER_CONNECTIONS", d.worker_connections, 1, unit="connections"
        ),
        timeout=_env_int(env, "GUNICORN_TIMEOUT", d.timeout, 1, unit="seconds"),
        graceful_timeout=_env_int(
            env, "GUNICORN_GRACEFUL_TIMEOUT", d.graceful_timeout, 0, unit="seconds"
        ),
    )
