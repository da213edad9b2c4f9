"""SSE fan-out: N concurrent subscribers to one execution's live output on one worker.

One Hookrunner server (one gevent worker, engine on, pinned to the first CPU).
A ``none``-auth trigger runs a Python one-liner that waits for a "go" file,
then prints ``time.time()`` every ``--interval`` s, ``--lines`` times. The
script posts one webhook, waits until the execution is running, then starts
``bench/sse_client.py`` (a separate process on the second CPU) which opens
``--subscribers`` connections to ``GET /admin/executions/<id>/stream``. Once
every subscriber has its first ``status`` event the go file is created, and
the client stamps every chunk it receives. For each ``log`` event, latency =
receive time - the timestamp printed in the line (same clock). Reported:
p50/p99, log events received per subscriber vs expected, and the worker's RSS
and open descriptors before, with subscribers connected, and after they left.
Target (docs/architecture.md): 1,000 subscribers, p99 < 100 ms. The baseline, measured first in
the same run on a fresh server, is the same with ``--baseline`` (1) subscriber:
the p99 is also printed as a ratio to it (what fan-out adds to the pipeline).

    python bench/sse_fanout.py --snapshot HEAD [--subscribers 1000] [--lines 100]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import harness
import machine
import servers
import store

P99_TARGET_MS = 100.0
CLIENT = Path(__file__).resolve().parent / "sse_client.py"
# Waits for the go file (argv[1]), then prints the time every argv[2] s, argv[3] times.
TICKER = (
    "import os, sys, time\n"
    "while not os.path.exists(sys.argv[1]): time.sleep(0.005)\n"
    "for _ in range(int(sys.argv[3])):\n"
    "    print(time.time(), flush=True); time.sleep(float(sys.argv[2]))\n"
)


def trigger_document(go_file: Path, interval: float, lines: int) -> dict[str, Any]:
    argv = [sys.executable, "-c", TICKER, str(go_file), str(interval), str(lines)]
    return {
        "name": "sse",
        "auth": {"scheme": "none"},
        "dedup": {"key": "none"},
        "action": {"type": "command", "argv": argv, "timeout_seconds": 300},
    }


def start_execution(server: servers.Server) -> str:
    headers = {"Content-Type": "application/json"}
    status, body = servers.request(server, "POST", "/webhooks/sse", b"{}", headers)
    if status != 202:
        raise RuntimeError(f"webhook refused: {status} {body[:200]!r}")
    return str(json.loads(body)["execution_id"])


def wait_running(server: servers.Server, execution_id: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    with store.read_only(server.db_path) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT status FROM executions WHERE id = ?", (execution_id,))
            if (found := row.fetchone()) and found[0] == "running":
                return
            time.sleep(0.05)
    raise RuntimeError(f"execution {execution_id} did not start")


def run(
    args: argparse.Namespace, common: harness.Common, workdir: Path, subscribers: int
) -> dict[str, Any]:
    """One attempt with ``subscribers`` subscribers on a fresh server."""
    server_cpu, client_cpu = harness.choose_cpus(common.pin)
    harness.pin_self(client_cpu)  # the subscriber process inherits it
    go_file = Path(tempfile.mkdtemp(dir=workdir)) / "go"  # a new one per attempt
    env = {"GUNICORN_WORKER_CONNECTIONS": str(max(2000, subscribers + 100))}
    result: dict[str, Any] = {
        "subscribers": subscribers,
        "pinning": {"server_cpu": server_cpu, "client_cpu": client_cpu},
    }
    with servers.gunicorn(workdir, "sse", None, server_cpu, common.root, True, env) as server:
        servers.create_trigger(server, trigger_document(go_file, args.interval, args.lines))
        execution_id = start_execution(server)
        wait_running(server, execution_id)
        worker = harness.worker_pid(server)
        result["worker_before"] = harness.memory(worker)
        out = go_file.with_name("sse-client.json")
        command = [
            sys.executable,
            str(CLIENT),
            f"--port={server.port}",
            f"--token={server.admin_token}",
            f"--execution={execution_id}",
            f"--subscribers={subscribers}",
            f"--expected-lines={args.lines}",
            f"--timeout={args.timeout}",
            f"--out={out}",
        ]
        client = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        try:
            assert client.stdout is not None
            ready_line = client.stdout.readline().strip()  # "READY <n>", bounded by --timeout
            result["client_ready"] = ready_line
            result["worker_connected"] = harness.memory(worker)
            result["quiet_waited_s"] = harness.quiet([server.process.pid], common.quiet_wait)
            before = machine.cpu_sample([server.process.pid, client.pid])
            profile = common.profile("")
            with harness.profiling(common.py_spy, worker, profile) as profiled:
                go_file.touch()
                client.wait(timeout=args.timeout + 30)
            after = machine.cpu_sample([server.process.pid])
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()
        result["foreign_cpus"] = machine.foreign_cpus(before, after)
        result["profile"] = str(profiled) if profiled else None
        time.sleep(1.0)  # let the worker drop the finished streams
        result["worker_after"] = harness.memory(worker)
        with store.read_only(server.db_path) as conn:
            row = conn.execute(
                "SELECT status, (SELECT count(*) FROM execution_logs WHERE execution_id = ?)"
                " FROM executions WHERE id = ?",
                (execution_id, execution_id),
            ).fetchone()
        result["execution"] = {"id": execution_id, "status": row[0], "stored_lines": row[1]}
    result["client"] = json.loads(out.read_text()) if out.exists() else None
    result["server_log"] = servers.analyse_log(server.log_path)
    result["flags"] = harness.run_flags(
        result["foreign_cpus"], result["server_log"], bool(result["profile"])
    )
    return result


def print_run(result: dict[str, Any], lines: int) -> None:
    client = result["client"] or {}
    count = result["subscribers"]
    print(f"\n{count} subscriber(s): {result['client_ready']} after {client.get('all_ready_s')} s")
    print(
        f"log events received: {client.get('events_received')} of {count * lines} expected;"
        f" per subscriber: {client.get('log_events_per_subscriber')}; every line in order:"
        f" {client.get('subscribers_with_every_line_in_order')}; end event:"
        f" {client.get('subscribers_with_end_event')}"
    )
    for key in (
        "latency_ms",
        "printed_to_stamped_ms",
        "stamped_to_received_ms",
        "fanout_spread_ms",
    ):
        values = client.get(key) or {}
        if values:
            print(
                f"{key:<24} p50 {values['p50']:>8.2f}  p90 {values['p90']:>8.2f}"
                f"  p99 {values['p99']:>8.2f}  max {values['max']:>8.2f}"
            )
    for moment in ("worker_before", "worker_connected", "worker_after"):
        memory = result[moment]
        print(
            f"{moment:<17} RSS {memory['vmrss_kib'] / 1024:>7.1f} MiB, peak"
            f" {memory['vmhwm_kib'] / 1024:>7.1f} MiB, {memory['open_fds']} fds"
        )
    for problem in result["flags"]:
        print(f"FLAG {problem}")


def p99(result: dict[str, Any] | None) -> float | None:
    latency = ((result or {}).get("client") or {}).get("latency_ms") or {}
    return latency.get("p99")


def summarise(fanout: dict[str, Any], baseline: dict[str, Any] | None) -> dict[str, Any]:
    """The target (p99 < 100 ms, every line to every subscriber) and p99 vs the baseline."""
    complete = (fanout["client"] or {}).get("subscribers_with_every_line_in_order")
    fanout_p99, base_p99 = p99(fanout), p99(baseline)
    return {
        "subscribers": fanout["subscribers"],
        "every_line_to_every_subscriber": complete == fanout["subscribers"],
        "p99_ms": fanout_p99,
        "baseline_subscribers": baseline["subscribers"] if baseline else None,
        "baseline_p99_ms": base_p99,
        "p99_vs_baseline": round(fanout_p99 / base_p99, 2) if fanout_p99 and base_p99 else None,
        "p99_target_ms": P99_TARGET_MS,
        "met": bool(fanout_p99 is not None and fanout_p99 < P99_TARGET_MS)
        and complete == fanout["subscribers"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--lines", type=int, default=100, help="lines the command prints")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between lines")
    parser.add_argument("--timeout", type=float, default=90, help="max seconds of streaming")
    parser.add_argument(
        "--baseline",
        type=int,
        default=1,
        help="first measure this many subscribers on a fresh server (0: skip)",
    )
    harness.add_common_args(parser)
    args = parser.parse_args(argv)
    if not 1 <= args.subscribers <= 5000 or not 1 <= args.lines <= 1000:
        parser.error("--subscribers must be 1..5000 and --lines 1..1000")
    if not 0 <= args.baseline <= args.subscribers:
        parser.error("--baseline must be 0..--subscribers")
    if not 0.01 <= args.interval <= 1 or not 10 <= args.timeout <= 300:
        parser.error("--interval must be 0.01..1 s and --timeout 10..300 s")
    common = harness.parse_common(parser, args, "sse-fanout")
    counts = ([args.baseline] if args.baseline else []) + [args.subscribers]
    with harness.workspace(common) as workdir:
        described = machine.describe(workdir, common.root)
        runs = [
            harness.with_retries(
                f"{count} subscriber(s)",
                partial(run, args, common, workdir, count),
                lambda attempt: attempt["foreign_cpus"],
                common.retries,
            )
            for count in counts
        ]
    for result in runs:
        print_run(result, args.lines)
    baseline = runs[0] if args.baseline else None
    summary = summarise(runs[-1], baseline)
    if summary["p99_vs_baseline"] is not None:
        print(
            f"\np99 with {args.subscribers} subscribers: {summary['p99_ms']:.1f} ms ="
            f" {summary['p99_vs_baseline']:.2f}x the p99 with {args.baseline}"
            f" ({summary['baseline_p99_ms']:.1f} ms), same run"
        )
    verdict = "met" if summary["met"] else "NOT met"
    print(f"target {args.subscribers} subscribers, p99 < {P99_TARGET_MS:.0f} ms: {verdict}")
    harness.write_results(
        common.name,
        common.output,
        {
            "machine": described,
            "params": harness.params(args, common.output),
            "baseline": baseline,
            "result": runs[-1],
            "summary": summary,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
