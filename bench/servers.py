"""The servers the benchmarks measure: Hookrunner or the bare app under Gunicorn, adnanh/webhook.

Gunicorn is started and stopped by ``tests/server.py``, the helper the test
suite uses too. Every benchmark server runs ``python -m gunicorn -c
gunicorn.conf.py`` from the source tree measured with the same environment (one
gevent worker, ``LOG_LEVEL=INFO``, JSON logs, scheduler off, a temp SQLite
file, no settings leaking in from the developer's environment). The bare target
adds the positional app argument ``bench.bare_app:app``, which overrides the
config's ``wsgi_app``; :func:`check_bare_override` proves it by asking for
Hookrunner's ``/readyz`` (404 on the bare app). Server output goes to a file.
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import harness  # puts the project root on sys.path, for tests.server
import machine
import store
from signing import TRIGGER_DOCUMENT

from tests.server import free_port, http_request, readyz, start_gunicorn, stop, wait_ready

BARE_APP = "bench.bare_app:app"
# Variables that would let a developer's settings leak into the measurement.
_SCRUBBED = ("SENTRY_DSN", "MAX_BODY_BYTES", "SQLITE_SYNCHRONOUS", "LOG_FORMAT", "GUNICORN_BIND")


@dataclass(frozen=True)
class Peer:
    """A server that is not Hookrunner (adnanh/webhook)."""

    name: str
    process: subprocess.Popen[bytes]
    host: str
    port: int
    log_path: Path


@dataclass(frozen=True)
class Server(Peer):
    """Hookrunner (or the bare app) under Gunicorn."""

    db_path: Path | str  # a SQLite file, or a PostgreSQL URL
    admin_token: str


def request(
    server: Peer,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    return http_request(server.port, method, path, body, headers)


def bare_ready(port: int) -> bool:
    return (
        http_request(port, "POST", "/bare", b"{}", {"Content-Type": "application/json"})[0] == 202
    )


def server_env(root: Path, admin_token: str, engine: bool) -> dict[str, str]:
    """The same environment for both targets; ``root`` first on the path, then this checkout.

    ``engine`` sets ``ENGINE_ENABLED``: off, the worker only ingests (queued
    executions stay queued); on, it also runs them, in the same process.
    """
    return {
        "ENGINE_ENABLED": "1" if engine else "0",
        "PYTHONPATH": os.pathsep.join(dict.fromkeys([str(root), str(harness.PROJECT_ROOT)])),
        "ADMIN_TOKEN": admin_token,
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",
        "SENTRY_DSN": "",
        "GUNICORN_WORKERS": "1",
    }


@contextmanager
def gunicorn(
    workdir: Path,
    name: str,
    app: str | None,
    cpu: int | None,
    root: Path = harness.PROJECT_ROOT,
    engine: bool = False,
    env: dict[str, str] | None = None,
) -> Iterator[Server]:
    """Serve Hookrunner (``app=None``) or ``app`` with ``root/gunicorn.conf.py``; stop in finally.

    ``root`` is the source tree served (this checkout, or a ``git archive`` snapshot
    of a commit, so that edits in progress do not change what is measured). ``env``
    (e.g. ``SENTRY_DSN``, ``GUNICORN_WORKERS``, ``EXECUTION_POOL_SIZE``) overrides
    variables of :func:`server_env`.
    """
    base, attempt = name, 1
    while (workdir / f"{name}.db").exists() or (workdir / f"{name}-server.log").exists():
        attempt += 1  # a retry: a fresh database, never the previous attempt's
        name = f"{base}-a{attempt}"
    port, token = free_port(), secrets.token_urlsafe(32)
    db_path: Path | str = workdir / f"{name}.db"
    log_path = workdir / f"{name}-server.log"
    env = dict(env or {})
    postgres = None
    if env.get("DATABASE_URL") == store.FRESH_POSTGRES:
        postgres = f"hr_bench_{uuid.uuid4().hex[:10]}"
        db_path = env["DATABASE_URL"] = store.create_postgres(postgres)
    try:
        process = start_gunicorn(
            workdir / f"{name}.db",
            port,
            log_path,
            server_env(root, token, engine and app is None) | env,  # baselines: no engines
            base_env={k: v for k, v in os.environ.items() if k not in _SCRUBBED},
            root=root,
            app=app,
            cpu=cpu,
            ready=bare_ready if app else readyz,
        )
        try:
            yield Server(name, process, "127.0.0.1", port, log_path, db_path, token)
        finally:
            stop(process)
    finally:
        if postgres is not None:  # read after the server stopped (durability): drop at exit
            atexit.register(store.drop_postgres, postgres)


def check_bare_override(server: Server) -> bool:
    """True when the bare server is really the bare app (Hookrunner would answer /readyz)."""
    return request(server, "GET", "/readyz")[0] == 404 and bare_ready(server.port)


def create_trigger(server: Server, document: dict[str, Any] | None = None) -> None:
    """Create ``document`` (default :data:`signing.TRIGGER_DOCUMENT`) through the admin API."""
    headers = {"Authorization": f"Bearer {server.admin_token}", "Content-Type": "application/json"}
    body = json.dumps(document or TRIGGER_DOCUMENT).encode()
    status, answer = request(server, "POST", "/admin/triggers", body, headers)
    if status != 201:
        raise RuntimeError(f"creating the trigger failed: {status} {answer[:300]!r}")


# --- adnanh/webhook (Debian package `webhook`), the peer of bench/dispatch.py -------------

WEBHOOK_BINARY = "/usr/bin/webhook"
WEBHOOK_INSTALL_HINT = "apt-get update && apt-get install -y webhook"


def webhook_version() -> str | None:
    done = machine.command_output(WEBHOOK_BINARY, "-version", timeout=5)
    return (done.stdout + done.stderr).strip() or None if done else None


@contextmanager
def adnanh_webhook(
    workdir: Path, name: str, hooks: list[dict[str, Any]], cpu: int | None
) -> Iterator[Peer]:
    """Serve ``hooks`` with ``webhook -hooks <file> -ip 127.0.0.1 -port N``; stop in finally.

    Not verbose (no per-request log line), pinned like Hookrunner (Go sizes
    GOMAXPROCS from the CPU affinity, so it gets the same single CPU).
    """
    hooks_path = workdir / f"{name}-hooks.json"
    hooks_path.write_text(json.dumps(hooks, indent=2))
    port = free_port()
    log_path = workdir / f"{name}-server.log"
    command = [WEBHOOK_BINARY, "-hooks", str(hooks_path), "-ip", "127.0.0.1", "-port", str(port)]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=None if cpu is None else lambda: os.sched_setaffinity(0, {cpu}),
        )
    try:
        wait_ready(process, port, log_path, lambda p: http_request(p, "GET", "/")[0] < 500)
        yield Peer(name, process, "127.0.0.1", port, log_path)
    finally:
        stop(process)


# --- after a run ---------------------------------------------------------------------------


def analyse_log(log_path: Path, samples: int = 5) -> dict[str, Any]:
    """Count log lines by level and access lines by status; keep a few non-INFO samples."""
    levels: Counter[str] = Counter()
    access: Counter[str] = Counter()
    durations: list[float] = []
    notable: list[str] = []
    unparsed = 0
    for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            unparsed += 1
            if len(notable) < samples:
                notable.append(line[:300])
            continue
        level = str(record.get("level"))
        levels[level] += 1
        if record.get("logger") == "hookrunner.access":
            access[str(record.get("status"))] += 1
            if isinstance(record.get("duration_ms"), int | float):
                durations.append(float(record["duration_ms"]))
        elif level not in ("INFO", "DEBUG") and len(notable) < samples:
            notable.append(line[:300])
    tenth = len(durations) // 10
    by_tenth = [
        round(sum(part) / len(part), 3)
        for part in (durations[i * tenth : (i + 1) * tenth] for i in range(10))
        if part
    ]
    durations.sort()
    return {
        "lines_by_level": dict(levels),
        "access_by_status": dict(access),
        "access_duration_ms_p50": durations[len(durations) // 2] if durations else None,
        "access_duration_ms_p99": durations[int(len(durations) * 0.99)] if durations else None,
        # mean server-side time per request, for each tenth of the requests in log order:
        # a rising series means ingest gets slower as the run goes on (e.g. queue depth)
        "access_duration_ms_mean_by_tenth": by_tenth,
        "unparsed_lines": unparsed,
        "notable": notable,
    }
