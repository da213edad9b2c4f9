"""Start and stop a real Gunicorn (gevent) Hookrunner in a subprocess.

The one implementation for the end-to-end tests (:func:`gunicorn_server`), the
benchmarks (``bench/servers.py``) and the drills (``bench/drills/``): each
server runs ``python -m gunicorn -c gunicorn.conf.py`` in its own session on
127.0.0.1, a free port and a given SQLite file, with the scheduler off, and its
output goes to a log file. :func:`start_gunicorn` returns once the server is
ready; :func:`stop` sends SIGTERM to the master (SIGKILL to the whole process
group after a timeout, or at once when asked for SIGKILL).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
READY_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, bytes]:
    """One request to 127.0.0.1:``port`` on a fresh connection: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def readyz(port: int) -> bool:
    return http_request(port, "GET", "/readyz")[0] == 200


def _log_tail(log_path: Path, chars: int = 4000) -> str:
    try:
        return log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError:
        return ""


def wait_ready(
    process: subprocess.Popen[bytes],
    port: int,
    log_path: Path,
    ready: Callable[[int], bool] = readyz,
    timeout_s: float = READY_SECONDS,
) -> None:
    """Poll ``ready(port)``; on an early exit or a timeout stop ``process`` and raise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early; {log_path}:\n{_log_tail(log_path)}")
        try:
            if ready(port):
                return
        except (OSError, http.client.HTTPException):  # not listening yet, or a worker booting
            pass
        time.sleep(0.1)
    stop(process)
    raise RuntimeError(f"server not ready in {timeout_s:g} s; {log_path}:\n{_log_tail(log_path)}")


def start_gunicorn(
    db_path: Path,
    port: int,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    *,
    base_env: Mapping[str, str] | None = None,
    root: Path = PROJECT_ROOT,
    app: str | None = None,
    cpu: int | None = None,
    ready: Callable[[int], bool] = readyz,
) -> subprocess.Popen[bytes]:
    """Serve ``db_path`` on 127.0.0.1:``port``; return the master once ``ready(port)``.

    The environment is ``base_env`` (default: this process's) plus the database,
    the bind address and ``SCHEDULER_ENABLED=0``, then ``env``. ``root`` is the
    source tree served (its ``gunicorn.conf.py``); ``app`` a positional WSGI app
    that overrides the config's; ``cpu`` pins the server (and so its children).
    Output is appended to ``log_path``, so a restart on the same file keeps the
    earlier lines.
    """
    full_env = {
        **(os.environ if base_env is None else base_env),
        "DATABASE_URL": f"sqlite:///{db_path}",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "SCHEDULER_ENABLED": "0",
        **(env or {}),
    }
    command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", *([app] if app else [])]
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            command,
            cwd=root,
            env=full_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # the caller starts no threads before its servers (see bench/harness.py)
            preexec_fn=None if cpu is None else lambda: os.sched_setaffinity(0, {cpu}),
        )
    wait_ready(process, port, log_path, ready)
    return process


def stop(
    process: subprocess.Popen[bytes], signum: int = signal.SIGTERM, timeout_s: float = 60
) -> None:
    """Stop a server started in its own session and wait for it.

    SIGKILL goes to the whole process group at once (master and workers, as a
    crash or an OOM kill would); any other signal goes to the master, and the
    group gets SIGKILL if the master has not exited after ``timeout_s``.
    """
    if signum != signal.SIGKILL:
        if process.poll() is not None:
            return
        process.send_signal(signum)
        try:
            process.wait(timeout=timeout_s)
            return
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):  # the whole group is gone already
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


class Server:
    def __init__(self, process: subprocess.Popen[bytes], base_url: str, log_path: Path):
        self.process = process
        self.base_url = base_url
        self.log_path = log_path

    def kill_hard(self) -> None:
        """SIGKILL the master and its workers at once, as a crash or OOM kill would."""
        stop(self.process, signal.SIGKILL)

    def log_lines(self) -> list[str]:
        return self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()


@contextmanager
def gunicorn_server(
    tmp_path: Path, env: dict[str, str] | None = None, workers: int = 1
) -> Iterator[Server]:
    """Start ``gunicorn -c gunicorn.conf.py`` on a free port and a temp database."""
    port = free_port()
    log_path = tmp_path / f"server-{port}.log"
    log_path.write_bytes(b"")  # this server's lines only
    defaults = {
        "GUNICORN_WORKERS": str(workers),
        "LOG_FORMAT": "json",
        "GUNICORN_GRACEFUL_TIMEOUT": "10",
    }
    process = start_gunicorn(tmp_path / "server.db", port, log_path, defaults | (env or {}))
    try:
        yield Server(process, f"http://127.0.0.1:{port}", log_path)
    finally:
        stop(process)
