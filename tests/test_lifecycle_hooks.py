"""The Gunicorn hooks find a worker's lifecycle without importing anything.

``gunicorn.conf.py``'s SIGTERM handler asks :func:`app.lifecycle.of` for the
worker's lifecycle. A signal handler may run while the worker is still importing
the app, so ``of`` must not import: a second SIGTERM during that import used to
meet a partially initialised ``app.wiring`` and crash the worker with an
ImportError (seen when Gunicorn served another app, as the benchmarks' bare
Flask baseline does).
"""

from __future__ import annotations

import subprocess
import sys

from flask import Flask

from app import lifecycle
from app.wiring import components
from tests.server import PROJECT_ROOT


def test_a_hookrunner_app_gives_its_own_lifecycle(app: Flask) -> None:
    assert lifecycle.of(app) is components(app).lifecycle


def test_another_app_or_none_gives_none() -> None:
    assert lifecycle.of(Flask("not_hookrunner")) is None
    assert lifecycle.of(None) is None


def test_looking_up_imports_nothing() -> None:
    script = (
        "import sys\n"
        "from flask import Flask\n"
        "from app import lifecycle\n"
        "assert lifecycle.of(Flask('bare')) is None\n"
        "assert lifecycle.of(None) is None\n"
        "print(sorted(m for m in sys.modules if m.startswith('app.')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "['app.lifecycle']", done.stdout + done.stderr
