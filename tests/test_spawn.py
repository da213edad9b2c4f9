"""Process start under gevent, as inside a Gunicorn worker."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

# As in a Gunicorn worker: gevent patched, SIGCHLD reset to its default (which
# uninstalls libev's handler until it is installed again), many children at once.
_UNDER_GEVENT = textwrap.dedent(
    """
    from gevent import monkey; monkey.patch_all()
    import signal, gevent
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    import os
    from gevent.socket import wait_read
    from app.execution.runners import spawn

    def read_all(pipe):  # the output pipes are plain files: wait for readiness, then read
        data = b""
        while True:
            wait_read(pipe.fileno())
            chunk = os.read(pipe.fileno(), 65536)
            if not chunk:
                return data
            data += chunk

    def run(code):
        child = spawn.start(["/bin/sh", "-c", f"echo out; echo err >&2; exit {code}"],
                            {"PATH": "/usr/bin:/bin"}, None, False)
        out, err = read_all(child.stdout), read_all(child.stderr)
        child.stdout.close(); child.stderr.close()
        return child.wait(), out, err

    jobs = [gevent.spawn(run, n % 5) for n in range(50)]
    gevent.joinall(jobs, timeout=30)
    assert all(job.ready() for job in jobs), "a child's exit went unnoticed"
    assert [job.value[0] for job in jobs] == [n % 5 for n in range(50)]
    assert {job.value[1:] for job in jobs} == {(b"out\\n", b"err\\n")}
    # Every child is reaped (no zombie left) and gevent keeps no exit status of
    # ours in its table, which it scans on every exit (a cost per execution).
    try:
        monkey.get_original("os", "waitpid")(-1, os.WNOHANG)
    except ChildProcessError:
        pass
    else:
        raise AssertionError("a child was left unreaped")
    from gevent import os as gevent_os
    assert not gevent_os._watched_children, len(gevent_os._watched_children)
    print("ok")
    """
)


def test_children_are_reaped_with_their_exit_codes_under_gevent() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _UNDER_GEVENT],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
