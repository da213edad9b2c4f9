"""Shared plumbing of the bench scripts: command line, CPUs, quiet machine, rounds, results.

Every HTTP script measures a ``git archive`` snapshot of a commit (``--snapshot
HEAD``) or a given source tree, pins servers and clients to separate CPUs unless
told not to, waits for the machine to be quiet before a measured run, records
how much CPU other processes used during it (and measures again on a fresh
server if they used too much), optionally samples the Hookrunner worker with
py-spy, and writes one JSON file to the git-ignored ``bench/out/``
(``<name>-<UTC time>.json``, profiles next to it), which ``bench/summary.py``
reads.

Importing this module also puts the project root on ``sys.path`` (last, so a
``PYTHONPATH`` given to ``stages.py`` still decides which ``app`` is measured):
the server and fake-Sentry helpers are shared with the test suite
(``tests/server.py``, ``tests/fake_sentry.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import machine

if TYPE_CHECKING:
    import servers

PROJECT_ROOT = Path(__file__).resolve().parents[1]
if str(PROJECT_ROOT) not in sys.path:
    sys.path.append(str(PROJECT_ROOT))
OUT_DIR = PROJECT_ROOT / "bench" / "out"
FOREIGN_CPU_LIMIT = 0.05  # CPUs' worth of other processes' work tolerated during a run
# The CPUs this process may use, read once at import: after :func:`pin_self` narrowed the
# affinity to the client's CPU, asking again would find one CPU and pin nothing (a bug of
# the first ingest.py, whose servers and wrk all ran on the client's CPU).
_ALLOWED_CPUS = sorted(os.sched_getaffinity(0))

Result = dict[str, Any]
Round = dict[str, Result]


# --- command line and output ---------------------------------------------------------------


def add_output_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="results JSON; default bench/out/<name>-<time>.json",
    )


def output_path(name: str, given: Path | None) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return given or OUT_DIR / f"{name}-{stamp}.json"


def add_common_args(parser: argparse.ArgumentParser, retries: int = 1) -> None:
    """--snapshot/--project-root, --quiet-wait, --retries, --py-spy, --no-pin, --output, ..."""
    parser.add_argument(
        "--snapshot",
        metavar="REV",
        default=None,
        help="serve a `git archive` export of this commit (e.g. HEAD) instead of the working"
        " tree, so edits in progress do not change what is measured",
    )
    parser.add_argument(
        "--project-root",
        type=Path,
        default=PROJECT_ROOT,
        help="source tree to serve; default: this checkout",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=60,
        help="before each measured run, wait up to this many seconds for other processes to"
        " go quiet (0 = do not wait)",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=retries,
        help="redo a measurement (fresh server) up to this many times when other processes"
        " used the CPU during it",
    )
    parser.add_argument(
        "--py-spy",
        metavar="PATH",
        default=None,
        help="py-spy binary: sample the Hookrunner worker(s) during the measured run (the"
        " run is then flagged as profiled)",
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin server and client")
    add_output_arg(parser)
    parser.add_argument("--keep-tmp", action="store_true", help="keep DBs and server logs")


@dataclass(frozen=True)
class Common:
    name: str
    root: Path
    snapshot: str | None
    quiet_wait: float
    retries: int
    py_spy: str | None
    pin: bool
    output: Path
    keep_tmp: bool

    def profile(self, suffix: str) -> Path:
        """Where a py-spy profile goes: next to the results, ``<output>-<suffix>.pyspy.txt``."""
        return self.output.with_name(f"{self.output.stem}{suffix}.pyspy.txt")


def parse_common(parser: argparse.ArgumentParser, args: argparse.Namespace, name: str) -> Common:
    """Validate the common options; export the snapshot (removed again by :func:`workspace`)."""
    root: Path = args.project_root
    if args.snapshot is not None:
        if root != PROJECT_ROOT:
            parser.error("--snapshot and --project-root exclude each other")
        destination = Path(tempfile.mkdtemp(prefix="hookrunner-src-"))
        try:
            root = machine.make_snapshot(PROJECT_ROOT, args.snapshot, destination)
        except (ValueError, subprocess.CalledProcessError) as exc:
            parser.error(f"--snapshot {args.snapshot}: {exc}")
    if not (root / "gunicorn.conf.py").is_file():
        parser.error(f"{root} has no gunicorn.conf.py")
    return Common(
        name=name,
        root=root.resolve(),
        snapshot=args.snapshot,
        quiet_wait=max(0.0, min(args.quiet_wait, 600.0)),
        retries=max(0, min(args.retries, 10)),
        py_spy=args.py_spy,
        pin=not args.no_pin,
        output=output_path(name, args.output),
        keep_tmp=args.keep_tmp,
    )


@contextmanager
def workspace(common: Common) -> Iterator[Path]:
    """A temp directory for databases and logs; removed (with any snapshot) afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="hookrunner-bench-"))
    try:
        yield workdir
    finally:
        if common.keep_tmp:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
            if common.snapshot is not None:
                shutil.rmtree(common.root, ignore_errors=True)


def params(args: argparse.Namespace, output: Path) -> dict[str, Any]:
    """The command line as recorded in the results (the served tree is in ``machine``)."""
    return {k: v for k, v in vars(args).items() if k != "project_root"} | {"output": output}


def write_results(name: str, output: Path, results: dict[str, Any]) -> None:
    """``results`` as JSON, tagged ``"benchmark": name`` so summary.py finds it anywhere."""
    output.parent.mkdir(parents=True, exist_ok=True)
    document = {"benchmark": name} | results
    output.write_text(json.dumps(document, indent=2, default=str) + "\n")
    print(f"\nresults: {output}")


# --- CPUs, quiet machine, retries, rounds --------------------------------------------------


def choose_cpus(pin: bool) -> tuple[int | None, int | None]:
    """(server CPU, load-generator CPU), or no pinning with fewer than two CPUs."""
    if not pin or len(_ALLOWED_CPUS) < 2:
        return None, None
    return _ALLOWED_CPUS[0], _ALLOWED_CPUS[1]


def pin_self(cpu: int | None) -> None:
    """Pin this process (the client) to ``cpu``; children started later inherit it."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


def quiet(roots: list[int], max_wait_s: float) -> float:
    """Wait up to ``max_wait_s`` for a quiet window (see :func:`machine.wait_for_quiet`)."""
    if max_wait_s <= 0:
        return 0.0
    return machine.wait_for_quiet(roots, FOREIGN_CPU_LIMIT, max_wait_s)


def with_retries(
    label: str,
    measure: Callable[[], Result],
    foreign: Callable[[Result], float],
    retries: int,
) -> Result:
    """Measure; redo (up to ``retries`` times) while other processes used the CPU meanwhile."""
    discarded: list[float] = []
    while True:
        print(f"{label} ...", file=sys.stderr, flush=True)
        result = measure()
        busy = foreign(result)
        if busy <= FOREIGN_CPU_LIMIT or len(discarded) >= retries:
            result["discarded_attempts_foreign_cpus"] = discarded
            return result
        print(f"  other processes used {busy:.2f} CPUs; measuring again", file=sys.stderr)
        discarded.append(busy)


def measure_round(
    round_no: int,
    names: Sequence[str],
    measure: Callable[[int, str], Result],
    foreign: Callable[[Result], float],
    retries: int,
) -> Round:
    """``measure(round_no, name)`` for every name, with retries, in an order that rotates
    from round to round (two names: alternating)."""
    shift = (round_no - 1) % len(names)
    order = [*names[shift:], *names[:shift]]
    return {
        name: with_retries(
            f"round {round_no}: {name}", partial(measure, round_no, name), foreign, retries
        )
        for name in order
    }


def run_flags(
    foreign_cpus: float | None,
    server_log: dict[str, Any] | None,
    profiled: bool,
    where: str = "server",
) -> list[str]:
    """The problems every kind of run can have: a busy machine, odd log lines, py-spy."""
    problems = []
    if (foreign_cpus or 0.0) > FOREIGN_CPU_LIMIT:
        problems.append(f"other processes used {foreign_cpus:.2f} CPUs during the run")
    if notable := (server_log or {}).get("notable"):
        problems.append(f"{where} logged non-INFO lines, e.g. {notable[0][:160]}")
    if profiled:
        problems.append("sampled by py-spy: throughput not comparable")
    return problems


def print_flags(rounds: list[Round]) -> None:
    """One ``FLAG`` line per problem a result lists under ``"flags"``."""
    for results in rounds:
        for name, result in results.items():
            for problem in result.get("flags", []):
                print(f"FLAG {name} round {result['round']}: {problem}")


def ratio_verdict(label: str, ratio: float, target: float) -> str:
    verdict = "met" if ratio >= target else "NOT met"
    return f"{label}: {ratio:.1%} (target >= {target:.0%}: {verdict})"


# --- the worker process --------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def worker_pids(server: servers.Server) -> list[int]:
    """The Gunicorn web workers: children of the arbiter other than the engine supervisor."""
    workers = []
    for pid in _children(server.process.pid):
        try:
            if b"app.execution.supervisor" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                workers.append(pid)
        except OSError:
            continue
    return workers


def sampled_process(server: servers.Server) -> tuple[int, bool]:
    """What to sample: the single child of the arbiter, or the arbiter's whole tree.

    ``(pid, subprocesses)``: with engine processes next to the worker (the default
    deployment) the master has several children, and a profile follows them all.
    """
    pids = _children(server.process.pid)
    return (pids[0], False) if len(pids) == 1 else (server.process.pid, True)


def worker_pid(server: servers.Server) -> int:
    """The pid of the (single) Gunicorn worker."""
    pids = worker_pids(server)
    if len(pids) != 1:
        raise RuntimeError(f"expected one worker under {server.process.pid}, found {pids}")
    return pids[0]


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) in KiB, and the number of open file descriptors."""
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[f"{key.lower()}_kib"] = int(value.split()[0])
    found["open_fds"] = len(list(Path(f"/proc/{pid}/fd").iterdir()))
    return found


@contextmanager
def profiling(
    py_spy: str | None,
    pid: int,
    path: Path,
    duration: float | None = None,
    subprocesses: bool = False,
) -> Iterator[Path | None]:
    """Sample ``pid`` (with ``subprocesses``: and its children) with py-spy while the block runs.

    Non-blocking, 200 Hz, collapsed stacks (``--format=raw``, read them with
    ``bench/pyspy_top.py``). With ``duration`` py-spy stops by itself; without,
    it gets SIGINT when the block ends and writes what it sampled.
    """
    if py_spy is None:
        yield None
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        py_spy,
        "record",
        "--nonblocking",
        "--rate=200",
        "--format=raw",
        f"--pid={pid}",
        f"--output={path}",
        *(["--subprocesses"] if subprocesses else []),
    ]
    if duration is not None:
        command.append(f"--duration={max(1, round(duration))}")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield path
    finally:
        if duration is None:
            process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=(duration or 0) + 30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
