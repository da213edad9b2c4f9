"""The process model's four rows, on SQLite and on PostgreSQL, in one run.

Runs, for each store, the existing benchmarks with the default deployment (web
workers and engine processes, nothing pinned) and collects their verdicts into
one table:

* ``ingest.py --engine off``: signed, deduped, durable ingest as a ratio of a bare
  Flask endpoint under the same Gunicorn settings (target >= 0.70);
* ``ingest.py --engine on``: p99 at a fixed 200 req/s while every delivery runs
  ``/bin/true`` (target < 25 ms);
* ``dispatch.py``: executions of ``/bin/true`` per second against adnanh/webhook in
  the same run (target >= 1.0), the server CPU per execution of both, and the
  sender's send -> process started p50 (target < 10 ms); with it the floor (bare
  Flask that checks the HMAC and runs the command, no record) against webhook, which
  bounds that ratio on this stack, and Hookrunner against the floor;

and once ``drills/output_flood.py`` (``/healthz`` while a command floods output).
Each child writes its usual JSON to ``bench/out/``; this script writes one more
with the table::

    python bench/process_model.py --snapshot HEAD [--rounds 1] [--duration 6]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import harness

HERE = Path(__file__).resolve().parent
STORES = {"sqlite": [], "postgresql": ["--server-env", "DATABASE_URL=postgresql:fresh"]}


def _run(script: str, args: list[str], output: Path) -> dict[str, Any]:
    command = [sys.executable, str(HERE / script), *args, "--output", str(output)]
    print("$", " ".join(command[1:]), flush=True)
    subprocess.run(command, check=True, timeout=1800)
    return dict(json.loads(output.read_text()))


def measure(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    common = ["--no-pin", "--rounds", str(args.rounds), "--quiet-wait", str(args.quiet_wait)]
    if args.snapshot:
        common += ["--snapshot", args.snapshot]
    load = ["--duration", str(args.duration), "--warmup", str(args.warmup)]
    figures: dict[str, Any] = {}
    for store, server_env in STORES.items():
        off = _run("ingest.py", [*common, *load, "--engine", "off", *server_env], scratch / "a")
        on = _run("ingest.py", [*common, *load, "--engine", "on", *server_env], scratch / "b")
        dispatch = _run("dispatch.py", [*common, "--store", store], scratch / "c")
        figures[store] = {
            "ingest_ratio": off["summary"]["ratio"],
            "ingest_ratio_flagged": off["summary"].get("flagged", False),
            "p99_ms_at_200_with_commands": on["summary"]["fixed_rate_p99_ms_worst"],
            "p99_flagged": on["summary"].get("flagged", False),
            "dispatch_ratio": dispatch["summary"]["ratio"],
            "floor_ratio": dispatch["summary"]["floor_ratio"],
            "hookrunner_floor_ratio": dispatch["summary"]["hookrunner_floor_ratio"],
            "server_cpu_ms_per_execution": dispatch["summary"]["server_cpu_ms_per_execution"],
            "send_to_started_p50_ms": max(
                r["hookrunner"]["probe"]["send_to_exec_ms"]["p50"] for r in dispatch["rounds"]
            ),
        }
    flood = HERE / "drills" / "output_flood.py"
    print("$", f"drills/{flood.name}", flush=True)
    done = subprocess.run(
        [sys.executable, str(flood)], capture_output=True, text=True, timeout=600, check=False
    )
    figures["output_flood"] = {"exit": done.returncode, "tail": done.stdout.strip()[-600:]}
    return figures


def print_table(figures: dict[str, Any]) -> None:
    rows = [
        ("ingest / bare Flask (engine off)", "ingest_ratio", ">= 0.70", lambda v: v >= 0.70),
        ("p99 ms at 200 req/s, every delivery runs /bin/true", "p99_ms_at_200_with_commands",
         "< 25", lambda v: v < 25),
        ("executions/s / adnanh/webhook", "dispatch_ratio", ">= 1.0", lambda v: v >= 1.0),
        ("send -> process started p50 ms", "send_to_started_p50_ms", "< 10", lambda v: v < 10),
    ]  # fmt: skip
    print(f"\n{'row':<52} {'sqlite':>10} {'postgresql':>11}  target")
    for label, key, target, met in rows:
        cells = []
        for store in STORES:
            value = figures[store][key]
            cells.append(f"{value:.2f}{'' if met(value) else '!'}")
        print(f"{label:<52} {cells[0]:>10} {cells[1]:>11}  {target}")
    for store in STORES:
        cpu = figures[store]["server_cpu_ms_per_execution"]
        print(f"server CPU ms per execution ({store}): {cpu}")
        print(
            f"executions/s ({store}): floor (bare Flask, no record) / webhook"
            f" {figures[store]['floor_ratio']:.2f}, hookrunner / floor"
            f" {figures[store]['hookrunner_floor_ratio']:.2f}"
        )
    print("('!' = target not met)")
    print(f"output flood drill: exit {figures['output_flood']['exit']}")
    print(figures["output_flood"]["tail"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--snapshot", default=None, help="serve a git archive of this commit")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--duration", type=float, default=6)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--quiet-wait", type=float, default=10)
    harness.add_output_arg(parser)
    args = parser.parse_args(argv)
    output = harness.output_path("process-model", args.output)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="hookrunner-process-model-") as scratch:
        figures = measure(args, Path(scratch))
    print_table(figures)
    harness.write_results(
        "process-model", output, {"started": started, "params": vars(args), "figures": figures}
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
