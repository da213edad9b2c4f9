"""Spawn cost: starting a process with gevent's ``subprocess.Popen`` vs the standard library's.

Hookrunner's worker is gevent-patched, so each command execution goes through
gevent's ``Popen``. This runs the same loop in two fresh interpreters on one
CPU, one gevent-patched and one not, each with Flask imported and
``--ballast-mb`` of extra heap (RSS near the worker's), each ``Popen`` with the
runner's options (three pipes, new session):

* ``exec_ms``: call -> the child's ``exec``, as ``/bin/date +%s.%N`` prints it;
* ``cpu_ms``: CPU time per ``/bin/true`` run, parent and (waited) children;
* ``runs_per_s``: ``/bin/true`` started and reaped one after the other.

The figure is gevent's cost as a ratio of the standard library's. No server,
no network::

    python bench/spawn_cost.py [--runs 100] [--cpu 0]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import harness
import loadgen
import machine

_CHILD = """
import sys
if sys.argv[1] == "gevent":
    from gevent import monkey
    monkey.patch_all()
import json, resource, subprocess, time
import flask  # noqa: F401
runs = int(sys.argv[2])
ballast = [bytes(1024) for _ in range(int(sys.argv[3]) * 1024)]  # RSS like the worker's
opts = dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            start_new_session=True)
exec_s = []
for _ in range(runs):
    called = time.time()
    child = subprocess.Popen(["/bin/date", "+%s.%N"], **opts)
    out, _ = child.communicate()
    exec_s.append(float(out) - called)
    time.sleep(0.01)
def usage(who):
    found = resource.getrusage(who)
    return found.ru_utime + found.ru_stime
parent, children = usage(resource.RUSAGE_SELF), usage(resource.RUSAGE_CHILDREN)
started = time.perf_counter()
for _ in range(runs):
    subprocess.Popen(["/bin/true"], **opts).communicate()
elapsed = time.perf_counter() - started
print(json.dumps({"exec_s": exec_s,
    "parent_cpu_ms": (usage(resource.RUSAGE_SELF) - parent) / runs * 1000,
    "children_cpu_ms": (usage(resource.RUSAGE_CHILDREN) - children) / runs * 1000,
    "runs_per_s": runs / elapsed,
    "rss_kib": int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0])}))
"""


def measure(kind: str, runs: int, cpu: int | None, ballast_mb: int) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-c", _CHILD, kind, str(runs), str(ballast_mb)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        preexec_fn=(lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None,
    )
    raw = json.loads(completed.stdout)
    return {
        "exec_ms": loadgen.percentiles_ms(raw["exec_s"]),
        "parent_cpu_ms": round(raw["parent_cpu_ms"], 3),
        "children_cpu_ms": round(raw["children_cpu_ms"], 3),
        "cpu_ms": round(raw["parent_cpu_ms"] + raw["children_cpu_ms"], 3),
        "runs_per_s": round(raw["runs_per_s"], 1),
        "rss_mib": round(raw["rss_kib"] / 1024, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--cpu", type=int, default=0, help="CPU to run on (-1: any)")
    parser.add_argument(
        "--ballast-mb", type=int, default=30, help="extra heap, so RSS is near the worker's 60 MB"
    )
    harness.add_output_arg(parser)
    args = parser.parse_args(argv)
    runs = max(10, min(args.runs, 2000))
    cpu = None if args.cpu < 0 else args.cpu
    ballast = max(0, min(args.ballast_mb, 1024))
    results = {kind: measure(kind, runs, cpu, ballast) for kind in ("stdlib", "gevent")}
    for kind, result in results.items():
        print(
            f"{kind:<7} call -> exec p50 {result['exec_ms']['p50']:.2f} ms,"
            f" p99 {result['exec_ms']['p99']:.2f} ms; CPU per /bin/true {result['cpu_ms']:.2f} ms"
            f" (parent {result['parent_cpu_ms']:.2f}, child {result['children_cpu_ms']:.2f});"
            f" {result['runs_per_s']:.0f} runs/s one after the other; RSS {result['rss_mib']} MiB"
        )
    gevent, stdlib = results["gevent"], results["stdlib"]
    ratios = {
        "exec_p50": round(gevent["exec_ms"]["p50"] / stdlib["exec_ms"]["p50"], 2),
        "cpu": round(gevent["cpu_ms"] / stdlib["cpu_ms"], 2),
        "runs_per_s": round(gevent["runs_per_s"] / stdlib["runs_per_s"], 3),
    }
    print(
        f"gevent / stdlib: call -> exec {ratios['exec_p50']:.1f}x, CPU {ratios['cpu']:.1f}x,"
        f" runs/s {ratios['runs_per_s']:.1%}"
    )
    output = harness.output_path("spawn-cost", args.output)
    described = machine.describe(Path(tempfile.gettempdir()), harness.PROJECT_ROOT)
    harness.write_results(
        "spawn-cost",
        output,
        {
            "machine": described,
            "params": {"runs": runs, "cpu": cpu, "ballast_mb": ballast},
            "results": results,
            "ratios": ratios,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
