"""Every entry point reads ``.env`` the same way and refuses a malformed value before binding.

Entry points: ``hookrunner serve``, ``gunicorn -c gunicorn.conf.py`` (a
checkout), ``gunicorn -c python:app.gunicorn_config`` (an install) and
``just dev-backend``. Each runs as a real process in a directory holding only
a ``.env``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.server import PROJECT_ROOT, free_port, wait_ready

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
ENTRY_POINTS = {
    "serve": [sys.executable, "-c", "from app.cli import main; main()", "serve"],
    "gunicorn.conf.py": [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        str(PROJECT_ROOT / "gunicorn.conf.py"),
    ],
    "installed config": [sys.executable, "-m", "gunicorn", "-c", "python:app.gunicorn_config"],
    "just dev-backend": [
        str(BIN / "just"),
        "--justfile",
        str(PROJECT_ROOT / "justfile"),
        "--working-directory",
        ".",
        "dev-backend",
    ],
}


def _clean_env(tmp_path: Path) -> dict[str, str]:
    """The test environment without any variable a ``.env`` is meant to supply."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GUNICORN_", "DATABASE_", "HOOKRUNNER_", "MAX_BODY", "LOG_"))
    }
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["HOOKRUNNER_HOME"] = str(tmp_path / "home")
    env["SCHEDULER_ENABLED"] = "0"
    return env


def _run_until_exit(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run ``argv``; it must end by itself (a server that started is killed and fails)."""
    process = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"{argv} kept running despite a malformed setting:\n{output}")
    return process.returncode, output


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("GUNICORN_WORKERS=two", "GUNICORN_WORKERS must be a whole number of worker processes"),
        ("GUNICORN_TIMEOUT=30s", "GUNICORN_TIMEOUT must be a whole number of seconds"),
        ("MAX_BODY_BYTES=lots", "MAX_BODY_BYTES must be a whole number of bytes"),
    ],
)
def test_a_malformed_value_in_dotenv_stops_start_up_with_one_line(
    entry: str, line: str, expected: str, tmp_path: Path
) -> None:
    if entry == "just dev-backend" and line != "GUNICORN_TIMEOUT=30s":
        pytest.skip("one case is enough for the recipe, which runs hookrunner serve")
    (tmp_path / ".env").write_text(f"GUNICORN_BIND=127.0.0.1:{free_port()}\n{line}\n")
    status, output = _run_until_exit(ENTRY_POINTS[entry], tmp_path, _clean_env(tmp_path))
    assert status != 0
    errors = [text for text in output.splitlines() if expected in text]
    assert len(errors) == 1
    assert errors[0].startswith(f"Error: {expected}")
    assert "Traceback" not in output
    assert "Listening at" not in output  # stopped before Gunicorn bound its port


@pytest.mark.parametrize("entry", ["gunicorn.conf.py", "installed config"])
def test_gunicorn_reads_bind_and_workers_from_dotenv(entry: str, tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / ".env").write_text(f"GUNICORN_BIND=127.0.0.1:{port}\nGUNICORN_WORKERS=2\n")
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ENTRY_POINTS[entry],
            cwd=tmp_path,
            env=_clean_env(tmp_path),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_ready(process, port, log_path)
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    booted = [text for text in log_path.read_text().splitlines() if "Booting worker" in text]
    assert len(booted) == 2
    assert f"store: sqlite {tmp_path / 'home' / 'hookrunner.db'}" in log_path.read_text()


def test_the_gunicorn_config_loads_nothing_gevent_must_patch_first(tmp_path: Path) -> None:
    probe = (
        "import sys, app.gunicorn_config; "
        "print(sorted(m for m in ('ssl', 'requests', 'sentry_sdk', 'urllib3', 'gevent')"
        " if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=_clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == "[]"
