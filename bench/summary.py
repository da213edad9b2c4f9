"""One screen: the newest result of each benchmark in ``bench/out/``, one line per target.

Each line: the target, the figure, its baseline from the same run, the ratio,
the target value and whether it was met, then when and on which commit it was
measured (``FLAGGED`` when the run flagged itself: other processes used the CPU,
py-spy sampled it, errors ...). A benchmark without a result says so. The last
step of ``just bench``; reads JSON only, measures nothing::

    python bench/summary.py [--dir bench/out]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import harness

# one row: (target, figure, baseline, ratio, target value, met: True/False/None = no target)
Row = tuple[str, str, str, str, str, bool | None]

COMMANDS = {  # how to get a result, in the order the summary lists them
    "ingest": "python bench/ingest.py --snapshot HEAD",
    "dispatch": "python bench/dispatch.py --snapshot HEAD",
    "sse-fanout": "python bench/sse_fanout.py --snapshot HEAD",
    "sentry-overhead": "python bench/sentry_overhead.py --snapshot HEAD",
    "scaling": "python bench/scaling.py --snapshot HEAD",
    "spawn-cost": "python bench/spawn_cost.py",
    "stages": "python bench/stages.py",
}


def ingest(doc: dict[str, Any]) -> Iterator[Row]:
    s = doc["summary"]
    figure, base = f"{s['hookrunner_rps']:.0f} req/s", f"{s['bare_rps']:.0f} req/s"
    ratio, goal = f"{s['ratio']:.1%}", f">= {s['ratio_target']:.0%}"
    yield "ingest req/s vs bare Flask", figure, base, ratio, goal, s["ratio_met"]
    p99, goal = f"{s['fixed_rate_p99_ms_worst']:.1f} ms", f"< {s['fixed_rate_p99_target_ms']:g} ms"
    rate = doc["params"].get("rate", 200)
    yield f"ingest p99 at {rate:g} req/s", p99, "-", "-", goal, s["fixed_rate_p99_met"]


def dispatch(doc: dict[str, Any]) -> Iterator[Row]:
    s = doc["summary"]
    figure = f"{statistics.median(s['hookrunner_executions_per_s']):.0f}/s"
    base = f"{statistics.median(s['webhook_executions_per_s']):.0f}/s"
    ratio, goal = f"{s['ratio']:.2f}x", f">= {s['ratio_target']:g}x"
    yield "executions/s vs adnanh/webhook", figure, base, ratio, goal, s["ratio_met"]
    p50 = f"{max(s['received_to_process_started_p50_ms']):.1f} ms"
    goal = f"< {s['received_to_process_started_target_ms']:g} ms"
    met = s["received_to_process_started_met"]
    yield "received -> process started p50", p50, "-", "-", goal, met


def sse_fanout(doc: dict[str, Any]) -> Iterator[Row]:
    s = doc["summary"]
    figure = "none" if s["p99_ms"] is None else f"{s['p99_ms']:.1f} ms"
    base = "-" if s["baseline_p99_ms"] is None else f"{s['baseline_p99_ms']:.1f} ms"
    ratio = "-" if s["p99_vs_baseline"] is None else f"{s['p99_vs_baseline']:.1f}x"
    base += f" ({s['baseline_subscribers']})" if s["baseline_subscribers"] else ""
    target = f"SSE p99, {s['subscribers']} subscribers"
    yield target, figure, base, ratio, f"< {s['p99_target_ms']:g} ms", s["met"]


def sentry_overhead(doc: dict[str, Any]) -> Iterator[Row]:
    s = doc["summary"]
    base = s["variants"][s["baseline"]]
    for name, variant in s["variants"].items():
        if name != s["baseline"]:
            figure, ratio = f"{variant['rps_median']:.0f} req/s", f"{variant['ratio']:.1%}"
            baseline, goal = f"{base['rps_median']:.0f} req/s", f">= {s['target']:.0%}"
            yield (
                f"Sentry on ({name})",
                figure,
                baseline,
                ratio,
                goal,
                variant["ratio"] >= s["target"],
            )


def scaling(doc: dict[str, Any]) -> Iterator[Row]:
    two, one = (doc["summary"]["variants"][name] for name in ("2-workers", "1-worker"))
    figure, base = f"{two['rps_median']:.0f} req/s", f"{one['rps_median']:.0f} req/s"
    yield "2 workers vs 1 (unpinned)", figure, base, f"{two['ratio']:.2f}x", "-", None


def spawn_cost(doc: dict[str, Any]) -> Iterator[Row]:
    gevent, stdlib = (doc["results"][kind]["exec_ms"]["p50"] for kind in ("gevent", "stdlib"))
    ratio = f"{doc['ratios']['exec_p50']:.1f}x"
    yield "gevent Popen: call -> exec p50", f"{gevent:.2f} ms", f"{stdlib:.2f} ms", ratio, "-", None


def stages(doc: dict[str, Any]) -> Iterator[Row]:
    found = {stage["stage"]: stage["us_per_op"] for stage in doc["stages"]}
    hookrunner, bare = found["full_request_hookrunner"], found["full_request_bare"]
    figure, base, ratio = f"{hookrunner:.0f} us", f"{bare:.0f} us", f"{hookrunner / bare:.1f}x"
    yield "in-process request (no HTTP)", figure, base, ratio, "-", None


ROWS: dict[str, Callable[[dict[str, Any]], Iterator[Row]]] = {
    "ingest": ingest,
    "dispatch": dispatch,
    "sse-fanout": sse_fanout,
    "sentry-overhead": sentry_overhead,
    "scaling": scaling,
    "spawn-cost": spawn_cost,
    "stages": stages,
}


def newest(directory: Path) -> dict[str, tuple[Path, dict[str, Any]]]:
    """The newest (by modification time) results document of each benchmark."""
    found: dict[str, tuple[Path, dict[str, Any]]] = {}
    for path in sorted(directory.glob("*.json"), key=lambda p: p.stat().st_mtime):
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        name = document.get("benchmark") if isinstance(document, dict) else None
        if name in ROWS:
            found[name] = (path, document)
    return found


def flagged(value: Any) -> bool:
    """Whether the run flagged itself anywhere: problems, other processes' CPU, py-spy."""
    if isinstance(value, dict):
        if value.get("flags") or value.get("flagged") or value.get("py_spy_profile"):
            return True
        if (value.get("foreign_cpus") or 0) > harness.FOREIGN_CPU_LIMIT or value.get("profile"):
            return True
        return any(flagged(item) for item in value.values())
    if isinstance(value, list):
        return any(flagged(item) for item in value)
    return False


def measured(document: dict[str, Any]) -> str:
    described = document.get("machine") or {}
    commit = ((described.get("code") or {}).get("commit") or "?")[:7]
    return f"{(described.get('date_utc') or '?')[:16].replace('T', ' ')} {commit}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=harness.OUT_DIR)
    args = parser.parse_args(argv)
    results = newest(args.dir)
    header = ("target", "figure", "baseline", "ratio", "target", "met")
    widths = (32, 12, 16, 7, 9, 4)
    print(f"Newest results in {args.dir} (figures to compare: bench/RESULTS.md)\n")
    print("  ".join(f"{h:<{w}}" for h, w in zip(header, widths, strict=True)) + "  measured")
    for name, rows in ROWS.items():
        if name not in results:
            print(f"{name:<{widths[0]}}  no result yet ({COMMANDS[name]})")
            continue
        path, document = results[name]
        when = measured(document) + ("  FLAGGED" if flagged(document) else "")
        try:
            lines = list(rows(document))
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
            print(f"{name:<{widths[0]}}  unreadable result {path.name}: {exc!r}")
            continue
        for *cells, met in lines:
            verdict = "-" if met is None else ("yes" if met else "NO")
            row = [*cells, verdict]
            print("  ".join(f"{c:<{w}}" for c, w in zip(row, widths, strict=True)) + f"  {when}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
