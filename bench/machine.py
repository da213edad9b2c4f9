"""What the benchmarks ran on: CPU, memory, versions, the temp filesystem, the code.

Recorded with every result so numbers from different machines are never
compared by accident. :func:`cpu_sample` / :func:`foreign_cpus` measure how
much CPU *other* processes used during a measurement (a shared machine where
someone runs the test suite skews a run; such runs are flagged).
"""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

_PACKAGES = (
    "gunicorn",
    "gevent",
    "flask",
    "werkzeug",
    "python-json-logger",
    "sentry-sdk",
    "hookrunner",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def filesystem_of(path: Path) -> str:
    """The filesystem type of the mount holding ``path`` (SQLite commit cost depends on it)."""
    best, fstype = "", "unknown"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return fstype
    resolved = str(path.resolve())
    for line in mounts:
        fields = line.split()
        if len(fields) >= 3 and resolved.startswith(fields[1]) and len(fields[1]) > len(best):
            best, fstype = fields[1], fields[2]
    return fstype


def command_output(*argv: str, timeout: float = 10) -> subprocess.CompletedProcess[str] | None:
    """A short command's exit status and output (text), or None if it could not run."""
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


def wrk_version() -> str | None:
    done = command_output("wrk", "--version", timeout=5)
    first = (done.stdout + done.stderr).strip().splitlines() if done else []
    return first[0] if first else None


def _git(root: Path, *args: str) -> str | None:
    done = command_output("git", "-C", str(root), *args)
    return done.stdout.strip() if done and done.returncode == 0 else None


def code_under_test(root: Path) -> dict[str, Any]:
    """Which code was measured: a snapshot's recorded commit, or a checkout's HEAD and dirt."""
    marker = root / ".snapshot-commit"
    if marker.is_file():
        return {"root": str(root), "commit": marker.read_text().strip(), "snapshot": True}
    status = _git(root, "status", "--porcelain", "--", "app", "migrations", "run.py")
    return {
        "root": str(root),
        "commit": _git(root, "rev-parse", "HEAD"),
        "snapshot": False,
        "uncommitted_app_files": None if status is None else len(status.splitlines()),
    }


def describe(tmp_dir: Path, root: Path) -> dict[str, Any]:
    return {
        "code": code_under_test(root),
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "nproc": os.cpu_count(),
        "cpus_allowed": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "mem_total_gib": _mem_total_gib(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "packages": {name: _package_version(name) for name in _PACKAGES},
        "wrk": wrk_version(),
        "tmp_dir": str(tmp_dir),
        "tmp_filesystem": filesystem_of(tmp_dir),
    }


# --- CPU used by other processes during a measurement -------------------------------------

_HZ = os.sysconf("SC_CLK_TCK")


def _busy_ticks() -> int:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (via /proc/<pid>/task/*/children)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        try:  # a process may exit while it is being read: it then has no children
            tasks = list(Path(f"/proc/{current}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                queue += [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


def _process_ticks(pid: int) -> int:
    """utime + stime + cutime + cstime of a live process (0 once it is gone)."""
    return sum(_own_and_children_ticks(pid))


def tree_cpu_seconds(roots: list[int]) -> float:
    """CPU seconds used so far by the process trees under ``roots`` (reaped children too)."""
    return sum(_process_ticks(pid) for root in roots for pid in descendants(root)) / _HZ


def _own_and_children_ticks(pid: int) -> tuple[int, int]:
    """(utime + stime, cutime + cstime) of a live process ((0, 0) once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0, 0
    return int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def _role(pid: int) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "other"
    if "app.execution.process" in command:
        return "engines"
    if "gunicorn" in command and _parent_is_gunicorn(pid):
        return "web workers"
    return "other"


def _parent_is_gunicorn(pid: int) -> bool:
    try:
        parent = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1]
        return b"gunicorn" in Path(f"/proc/{parent}/cmdline").read_bytes()
    except OSError:
        return False


def cpu_by_role(roots: list[int]) -> dict[str, float]:
    """CPU seconds so far of the trees under ``roots``, by role.

    ``web workers`` (Gunicorn's workers), ``engines`` (engine processes, without the
    commands they ran), ``commands`` (the children they reaped), ``other`` (the
    Gunicorn master, the engine supervisor, anything else) and ``store server``
    (every ``postgres`` process on the machine: the PostgreSQL server is not in the
    tree). Differences of two calls say where a measured run's CPU went.
    """
    found: dict[str, float] = {"web workers": 0.0, "engines": 0.0, "commands": 0.0, "other": 0.0}
    for root in roots:
        for pid in descendants(root):
            own, children = _own_and_children_ticks(pid)
            role = _role(pid)
            found[role] += own / _HZ
            found["commands" if role == "engines" else role] += children / _HZ
    found["store server"] = _postgres_ticks() / _HZ
    return found


def _postgres_ticks() -> int:
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if not (entry / "cmdline").read_bytes().startswith(b"postgres"):
                continue
        except OSError:
            continue
        own, children = _own_and_children_ticks(int(entry.name))
        total += own + children
    return total


@dataclass(frozen=True)
class CpuSample:
    wall: float
    busy: int  # all CPUs, clock ticks
    own: int  # this process, its waited children and the watched process trees, ticks


def cpu_sample(roots: list[int]) -> CpuSample:
    mine = os.times()
    own = (mine.user + mine.system + mine.children_user + mine.children_system) * _HZ
    own += sum(_process_ticks(pid) for root in roots for pid in descendants(root))
    return CpuSample(time.monotonic(), _busy_ticks(), round(own))


def foreign_cpus(before: CpuSample, after: CpuSample) -> float:
    """CPUs' worth of work done by other processes between two samples (0.25 = a quarter)."""
    elapsed = after.wall - before.wall
    if elapsed <= 0:
        return 0.0
    foreign = (after.busy - before.busy) - (after.own - before.own)
    return round(max(0, foreign) / _HZ / elapsed, 3)


def wait_for_quiet(
    roots: list[int], limit: float, max_wait_s: float, window_s: float = 3.0
) -> float:
    """Wait (up to ``max_wait_s``) for a ``window_s`` window where others use < ``limit``.

    Returns the seconds waited. A measurement is still flagged afterwards if the
    machine got busy during it; this only avoids starting one in the middle of,
    say, a test-suite run.
    """
    started = time.monotonic()
    while time.monotonic() - started < max_wait_s:
        before = cpu_sample(roots)
        time.sleep(window_s)
        if foreign_cpus(before, cpu_sample(roots)) < limit:
            break
    return round(time.monotonic() - started, 1)


def make_snapshot(repo: Path, rev: str, dest: Path) -> Path:
    """Export ``rev`` of ``repo`` into ``dest`` with ``git archive`` (read-only on the repo).

    Records the commit in ``dest/.snapshot-commit`` so results say what was measured.
    """
    commit = _git(repo, "rev-parse", "--verify", f"{rev}^{{commit}}")
    if commit is None:
        raise ValueError(f"{rev!r} is not a commit of {repo}")
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", "--format=tar", commit],
        capture_output=True,
        timeout=120,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, timeout=120, check=True)
    (dest / ".snapshot-commit").write_text(commit + "\n")
    return dest
