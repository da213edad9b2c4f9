"""Start, check and stop the Gunicorn servers that bench/ingest.py measures.

Both targets run ``python -m gunicorn -c gunicorn.conf.py`` from the project
root with the same environment (one gevent worker, ``LOG_LEVEL=INFO``, JSON
logs, scheduler off, a temp SQLite file). The bare target adds the positional
app argument ``bench.bare_app:app``, which overrides the config's
``wsgi_app``; :func:`check_bare_override` proves it by asking for
Hookrunner's ``/readyz`` (404 on the bare app). Server output goes to a file.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from signing import SECRET, TRIGGER

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BARE_APP = "bench.bare_app:app"
# Variables that would let a developer's settings leak into the measurement.
_SCRUBBED = ("SENTRY_DSN", "MAX_BODY_BYTES", "SQLITE_SYNCHRONOUS", "LOG_FORMAT", "GUNICORN_BIND")


@dataclass(frozen=True)
class Server:
    name: str
    process: subprocess.Popen[bytes]
    host: str
    port: int
    log_path: Path
    db_path: Path
    admin_token: str


@dataclass(frozen=True)
class Peer:
    """A server that is not Hookrunner (adnanh/webhook)."""

    name: str
    process: subprocess.Popen[bytes]
    host: str
    port: int
    log_path: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request(
    server: Server | Peer,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def server_env(
    db_path: Path,
    port: int,
    admin_token: str,
    root: Path,
    engine: bool,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The same environment for both targets; ``root`` first on the path, then this checkout.

    ``engine`` sets ``ENGINE_ENABLED``: off, the worker only ingests (queued
    executions stay queued); on, it also runs them, in the same process. ``extra``
    (e.g. ``SENTRY_DSN``, ``GUNICORN_WORKERS``, ``EXECUTION_POOL_SIZE``) is applied last.
    """
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env |= {
        "ENGINE_ENABLED": "1" if engine else "0",
        "PYTHONPATH": os.pathsep.join(dict.fromkeys([str(root), str(PROJECT_ROOT)])),
        "DATABASE_URL": f"sqlite:///{db_path}",
        "ADMIN_TOKEN": admin_token,
        "SCHEDULER_ENABLED": "0",
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",
        "SENTRY_DSN": "",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "1",
    }
    return env | (extra or {})


def _pin_to(cpu: int | None) -> Callable[[], None] | None:
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def _wait_ready(
    server: Server | Peer, ready: Callable[[Server | Peer], bool], timeout_s: float = 30
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited early; see {server.log_path}")
        try:
            if ready(server):
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} not ready in {timeout_s} s; see {server.log_path}")


def hookrunner_ready(server: Server | Peer) -> bool:
    return request(server, "GET", "/readyz")[0] == 200


def bare_ready(server: Server | Peer) -> bool:
    headers = {"Content-Type": "application/json"}
    return request(server, "POST", "/bare", b"{}", headers)[0] == 202


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def gunicorn(
    workdir: Path,
    name: str,
    app: str | None,
    cpu: int | None,
    root: Path = PROJECT_ROOT,
    engine: bool = False,
    env: dict[str, str] | None = None,
) -> Iterator[Server]:
    """Serve Hookrunner (``app=None``) or ``app`` with ``root/gunicorn.conf.py``; stop in finally.

    ``root`` is the source tree served (this checkout, or a ``git archive`` snapshot
    of a commit, so that edits in progress do not change what is measured). ``env``
    overrides variables of :func:`server_env`.
    """
    base, attempt = name, 1
    while (workdir / f"{name}.db").exists() or (workdir / f"{name}-server.log").exists():
        attempt += 1  # a retry: a fresh database, never the previous attempt's
        name = f"{base}-a{attempt}"
    port = free_port()
    db_path = workdir / f"{name}.db"
    log_path = workdir / f"{name}-server.log"
    token = secrets.token_urlsafe(32)
    command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", *([app] if app else [])]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=root,
            env=server_env(db_path, port, token, root, engine, env),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=_pin_to(cpu),  # this process starts no threads before the servers
        )
    server = Server(name, process, "127.0.0.1", port, log_path, db_path, token)
    try:
        _wait_ready(server, bare_ready if app else hookrunner_ready)
        yield server
    finally:
        _stop(process)


# --- adnanh/webhook (Debian package `webhook`), the peer of bench/dispatch.py -------------

WEBHOOK_BINARY = "/usr/bin/webhook"
WEBHOOK_INSTALL_HINT = "apt-get update && apt-get install -y webhook"


def webhook_version() -> str | None:
    try:
        completed = subprocess.run(
            [WEBHOOK_BINARY, "-version"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (completed.stdout + completed.stderr).strip() or None


def _any_answer(server: Server | Peer) -> bool:
    return request(server, "GET", "/")[0] < 500


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
            command, cwd=workdir, stdout=log_file, stderr=subprocess.STDOUT, preexec_fn=_pin_to(cpu)
        )
    peer = Peer(name, process, "127.0.0.1", port, log_path)
    try:
        _wait_ready(peer, _any_answer)
        yield peer
    finally:
        _stop(process)


def check_bare_override(server: Server) -> bool:
    """True when the bare server is really the bare app (Hookrunner would answer /readyz)."""
    return request(server, "GET", "/readyz")[0] == 404 and bare_ready(server)


# The trigger every Hookrunner run uses. queue_max is raised from its default (100) to the
# schema's maximum so that no unique delivery is refused 429 queue_full during a run: the
# benchmark measures the accepted path.
TRIGGER_DOCUMENT: dict[str, Any] = {
    "name": TRIGGER,
    "auth": {"scheme": "github", "secrets": [SECRET]},
    "action": {"type": "command", "argv": ["/bin/true"]},
    "concurrency": {"max": 1, "on_busy": "queue", "queue_max": 100_000},
}


def admin_headers(server: Server) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.admin_token}", "Content-Type": "application/json"}


def create_trigger(server: Server, document: dict[str, Any] | None = None) -> None:
    """Create ``document`` (default :data:`TRIGGER_DOCUMENT`) through the admin API."""
    body = json.dumps(document or TRIGGER_DOCUMENT).encode()
    status, answer = request(server, "POST", "/admin/triggers", body, admin_headers(server))
    if status != 201:
        raise RuntimeError(f"creating the trigger failed: {status} {answer[:300]!r}")


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


def count_rows(db_path: Path) -> dict[str, dict[str, int]]:
    """Deliveries by outcome and executions by status in a stopped server's database."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        deliveries = conn.execute("SELECT outcome, count(*) FROM deliveries GROUP BY outcome")
        executions = conn.execute("SELECT status, count(*) FROM executions GROUP BY status")
        return {
            "deliveries": {str(k): int(v) for k, v in deliveries.fetchall()},
            "executions": {str(k): int(v) for k, v in executions.fetchall()},
        }
    finally:
        conn.close()
