"""The built wheel is enough to run Hookrunner: no checkout, no working-directory files.

The wheel is built from this tree and unpacked (without dependencies, which
this environment already has) into a directory that is put first on
``PYTHONPATH``; every command then runs from an empty directory elsewhere.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from email.parser import Parser
from pathlib import Path

import pytest
import requests

from tests.server import PROJECT_ROOT, free_port, wait_ready

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(out),
            str(PROJECT_ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("hookrunner-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    return target


def _env(installed: Path, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("GUNICORN_", "DATABASE_", "HOOKRUNNER_"))
        },
        "PYTHONPATH": str(installed),
        "HOOKRUNNER_HOME": str(tmp_path / "home"),
        "SCHEDULER_ENABLED": "0",
        **extra,
    }


def _hookrunner(
    installed: Path, cwd: Path, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from app.cli import main; main()", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_wheel_ships_the_migrations_the_entry_module_and_the_gunicorn_config(
    wheel: Path,
) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(archive.read(metadata_name).decode())
    shipped = {Path(n).name for n in names if n.startswith("app/_migrations/")}
    assert shipped == {p.name for p in (PROJECT_ROOT / "migrations").glob("*.sql")}
    assert {"run.py", "app/gunicorn_config.py"} <= names
    required = {
        req.split(">")[0].split("[")[0].strip() for req in metadata.get_all("Requires-Dist")
    }
    assert "packaging" in required  # gunicorn's gevent worker imports it


def test_wheel_ships_every_dashboard_template_and_static_file(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    ui = PROJECT_ROOT / "app" / "ui"
    files = [p for p in ui.rglob("*") if p.is_file() and p.suffix in (".html", ".css", ".js")]
    expected = {p.relative_to(PROJECT_ROOT).as_posix() for p in files}
    assert "app/ui/templates/base.html" in expected
    assert expected <= names


def test_every_package_under_app_is_in_the_wheel_list() -> None:
    listed = set(
        tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
            "packages"
        ]
    )
    on_disk = {
        ".".join(init.parent.relative_to(PROJECT_ROOT).parts)
        for init in (PROJECT_ROOT / "app").rglob("__init__.py")
    }
    assert on_disk <= listed


@pytest.fixture
def empty_dir(tmp_path: Path) -> Path:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    return elsewhere


def test_installed_cli_migrates_and_creates_tokens_from_an_empty_directory(
    installed: Path, empty_dir: Path, tmp_path: Path
) -> None:
    env = _env(installed, tmp_path)
    version = _hookrunner(installed, empty_dir, env, "--version")
    assert version.returncode == 0, version.stderr
    assert "hookrunner, version" in version.stdout
    migrated = _hookrunner(installed, empty_dir, env, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    newest = len({p.name[:4] for p in (PROJECT_ROOT / "migrations").glob("*.sql")})
    assert f"{newest:04d}" in migrated.stdout
    token = _hookrunner(installed, empty_dir, env, "create-token")
    assert token.returncode == 0, token.stderr
    assert len(token.stdout.strip()) >= 43
    assert list(empty_dir.iterdir()) == []  # nothing written to the working directory


@pytest.fixture
def served(installed: Path, empty_dir: Path, tmp_path: Path) -> Iterator[str]:
    """``gunicorn -c python:app.gunicorn_config`` from the install, in an empty directory."""
    port = free_port()
    env = _env(installed, tmp_path, GUNICORN_BIND=f"127.0.0.1:{port}")
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:app.gunicorn_config"],
            cwd=empty_dir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(process, port, log_path)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_installed_gunicorn_config_serves_the_full_schema(
    served: str, installed: Path, empty_dir: Path, tmp_path: Path
) -> None:
    ready = requests.get(f"{served}/readyz", timeout=5).json()
    newest = len({p.name[:4] for p in (PROJECT_ROOT / "migrations").glob("*.sql")})
    assert ready == {"status": "ready", "schema_version": newest}
    token = _hookrunner(installed, empty_dir, _env(installed, tmp_path), "create-token")
    assert token.returncode == 0, token.stderr
    listing = requests.get(
        f"{served}/admin/triggers",
        headers={"Authorization": f"Bearer {token.stdout.strip()}"},
        timeout=5,
    )
    assert listing.status_code == 200


def test_ci_runs_the_install_check_and_stops_on_failure() -> None:
    script = (PROJECT_ROOT / ".ci" / "run").read_text().splitlines()
    assert "set -euo pipefail" in script
    assert "python3 .ci/install_check.py" in script
    assert (PROJECT_ROOT / ".ci" / "install_check.py").is_file()
