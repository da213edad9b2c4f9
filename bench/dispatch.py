"""Dispatch: executions of a trivial command per second, Hookrunner vs adnanh/webhook.

Both servers get the same ``--count`` GitHub-signed webhooks (unique, 1 KiB)
from the same client (``--concurrency`` keep-alive connections, closed loop),
and each webhook runs ``/bin/true`` once. The figure is **executions completed
per second**, end to end, from the first send until the last execution ended:

* ``webhook`` (adnanh/webhook, Debian package ``webhook``): the hook sets
  ``include-command-output-in-response``, so it answers only after the command
  exited, with 200 on exit status 0 (500 otherwise; 403 when the signature rule
  fails). So every 200 is one completed execution, and the run ends with the
  last answer. Its concurrency is the client's: ``--concurrency`` commands at once.
* ``hookrunner``: engine on, ``EXECUTION_POOL_SIZE`` = ``--concurrency``, trigger
  ``concurrency.max`` = ``--concurrency`` (queue up to 100,000), ``dedup: none``,
  as ``--deployment default`` (one web worker and one engine process per CPU the
  server may use; with pinning that is one CPU) or ``--deployment single`` (one
  gevent worker running its own engine). Ingest answers 202 at once; the run
  ends at the largest ``finished_at`` once the executions table shows all of
  them final (polled read-only, so watching costs the server nothing).
* ``floor`` (``bench/bare_app.py``, ``POST /spawn/<hook>``): bare Flask under the
  same Gunicorn configuration, as many gevent workers as Hookrunner has web workers,
  checking the HMAC, running the command and answering 200 once it exited, as
  ``webhook`` does. It records nothing: it is what CPython, Flask and Gunicorn's gevent
  worker allow before any of Hookrunner's work, so ``floor / webhook`` bounds what
  Hookrunner can reach on this stack and ``hookrunner / floor`` is Hookrunner's share.

Then a light **probe**: ``--probe-count`` webhooks, one at a time at
``--probe-rate``/s, to a hook running ``/bin/date +%s.%N``, which prints the
moment the process started. That gives, for both servers, *client send ->
process started*; for Hookrunner also *received (created_at) -> claimed
(started_at)* and *received -> process started* (target: p50 < 10 ms). Under the
saturating burst the same created_at -> started_at is mostly queueing, and is
reported too.

Server (and its children) on the first CPU, client on the second. All on
127.0.0.1, bounded in count and time; servers stopped by PID in ``finally``::

    python bench/dispatch.py --snapshot HEAD [--count 2000] [--concurrency 4] [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
from collections import Counter
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import harness
import loadgen
import machine
import servers
import signing
import store

TARGET_RATIO = 1.0
PROBE_P50_TARGET_MS = 10.0
TARGETS = ("webhook", "floor", "hookrunner")


def _hookrunner_trigger(name: str, argv: list[str], concurrency: int) -> dict[str, Any]:
    return {
        "name": name,
        "auth": {"scheme": "github", "secrets": [signing.SECRET]},
        "action": {"type": "command", "argv": argv},
        "dedup": {"key": "none"},
        "concurrency": {"max": concurrency, "on_busy": "queue", "queue_max": 100_000},
    }


def _webhook_hook(name: str, command: str, args: Sequence[str] = ()) -> dict[str, Any]:
    return {
        "id": name,
        "execute-command": command,
        "pass-arguments-to-command": [{"source": "string", "name": arg} for arg in args],
        "include-command-output-in-response": True,  # answer after the command exited
        "trigger-rule-mismatch-http-response-code": 403,
        "trigger-rule": {
            "match": {
                "type": "payload-hmac-sha256",
                "secret": signing.SECRET,
                "parameter": {"source": "header", "name": "X-Hub-Signature-256"},
            }
        },
    }


COMMANDS = {"bench": ["/bin/true"], "warm": ["/bin/true"], "probe": ["/bin/date", "+%s.%N"]}


def _ms(values: Sequence[float]) -> dict[str, float]:
    return loadgen.percentiles_ms(values)


# --- one target ----------------------------------------------------------------------------


class Target:
    """What differs between the two servers: start, hook path, when an execution is done."""

    def __init__(self, name: str, args: argparse.Namespace, common: harness.Common) -> None:
        self.name = name
        self.args = args
        self.common = common
        self.server: servers.Server | servers.Peer | None = None

    def serve(self, workdir: Path, round_no: int) -> AbstractContextManager[Any]:
        cpu = harness.choose_cpus(self.common.pin)[0]
        name = f"{self.name}-r{round_no}"
        if self.name == "webhook":
            hooks = [_webhook_hook(hook, argv[0], argv[1:]) for hook, argv in COMMANDS.items()]
            return servers.adnanh_webhook(workdir, name, hooks, cpu)
        workers = str(1 if cpu is not None else len(os.sched_getaffinity(0)))
        if self.name == "floor":  # as many gevent workers as Hookrunner's default has web workers
            # A baseline, not the code under test: always this checkout's, so that exports
            # of older commits (without the floor's endpoint) are measured against the same.
            env = {
                "BARE_HMAC_SECRET": signing.SECRET,
                "BARE_SPAWN_COMMANDS": json.dumps(COMMANDS),
                "GUNICORN_WORKERS": workers,
            }
            return servers.gunicorn(
                workdir, name, servers.BARE_APP, cpu, harness.PROJECT_ROOT, env=env
            )
        env = {"EXECUTION_POOL_SIZE": str(self.args.concurrency)}
        if self.args.deployment == "single":  # one web worker that runs its own engine
            env["ENGINE_PROCESSES"] = "0"
        else:  # web workers and engine processes, one each per CPU the server may use
            env["GUNICORN_WORKERS"] = workers
        if self.args.store == "postgresql":
            env["DATABASE_URL"] = store.FRESH_POSTGRES
        return servers.gunicorn(workdir, name, None, cpu, self.common.root, True, env)

    def path(self, hook: str) -> str:
        return {"webhook": f"/hooks/{hook}", "floor": f"/spawn/{hook}"}.get(
            self.name, f"/webhooks/{hook}"
        )

    def setup(self) -> None:
        if self.name == "hookrunner" and isinstance(self.server, servers.Server):
            for hook, argv in COMMANDS.items():
                doc = _hookrunner_trigger(hook, argv, self.args.concurrency)
                servers.create_trigger(self.server, doc)

    def send(self, hook: str, count: int, rate: float | None = None) -> loadgen.CountResult:
        assert self.server is not None
        template = signing.make_template(1024)
        items = list(signing.deliveries(template, count))
        concurrency = 1 if rate else self.args.concurrency
        return loadgen.run_count(
            self.server.host, self.server.port, self.path(hook), items, concurrency, rate
        )

    def finished(self, hook: str, count: int) -> list[store.Timing]:
        """Hookrunner: wait until ``count`` executions of ``hook`` are final; their timings.

        The baselines answer once the command exited: their 200s are the executions.
        """
        if self.name != "hookrunner" or not isinstance(self.server, servers.Server):
            return []
        store.wait_finished(self.server.db_path, hook, count, self.args.timeout)
        return store.timings(self.server.db_path, hook)


def measure(target: Target, round_no: int, workdir: Path, profile_path: Path) -> dict[str, Any]:
    """Warm-up, the measured burst of ``--count`` webhooks, then the paced probe."""
    args, common = target.args, target.common
    result: dict[str, Any] = {"target": target.name, "round": round_no}
    hookrunner = target.name == "hookrunner"
    with target.serve(workdir, round_no) as server:
        target.server = server
        target.setup()
        target.send("warm", args.warmup)
        target.finished("warm", args.warmup)
        roots = [server.process.pid]
        result["quiet_waited_s"] = harness.quiet(roots, common.quiet_wait)
        pid, several = harness.sampled_process(server) if hookrunner else (0, False)
        if hookrunner:
            result["worker_memory_before"] = harness.memory(pid)
        before = machine.cpu_sample(roots)
        server_cpu_before = machine.tree_cpu_seconds(roots)
        roles_before = machine.cpu_by_role(roots)
        py_spy = common.py_spy if hookrunner else None
        with harness.profiling(py_spy, pid, profile_path, subprocesses=several) as profiled:
            sent = target.send("bench", args.count)
            timings = target.finished("bench", args.count)
        after = machine.cpu_sample(roots)
        server_cpu = machine.tree_cpu_seconds(roots) - server_cpu_before
        roles_after = machine.cpu_by_role(roots)
        result["foreign_cpus"] = machine.foreign_cpus(before, after)
        result["profile"] = str(profiled) if profiled else None
        result["burst"] = burst_figures(sent, timings, args.count)
        # CPU per execution holds still when other processes share the machine, unlike exec/s.
        result["burst"]["server_cpu_ms_per_execution"] = round(1000 * server_cpu / args.count, 3)
        result["burst"]["cpu_ms_per_execution_by_role"] = {
            role: round(1000 * (roles_after[role] - roles_before[role]) / args.count, 3)
            for role in roles_after
        }
        probe = target.send("probe", args.probe_count, args.probe_rate)
        result["probe"] = probe_figures(probe, target.finished("probe", args.probe_count))
        if hookrunner:
            result["worker_memory_after"] = harness.memory(pid)
    if hookrunner and isinstance(server, servers.Server):
        result["server_log"] = servers.analyse_log(server.log_path)
        result["db"] = store.count_rows(server.db_path)
    else:
        result["server_log_tail"] = server.log_path.read_text(errors="replace")[-500:]
    return result


def burst_figures(
    sent: loadgen.CountResult, timings: list[store.Timing], count: int
) -> dict[str, Any]:
    """Executions/s from the first send to the last end; Hookrunner's queue wait too."""
    figures: dict[str, Any] = {
        "sent": count,
        "statuses": sent.statuses(),
        "errors": sent.errors,
        "client_cpu_s": sent.client_cpu_s,
        "answers_s": round(sent.last_done - sent.first_sent, 3),
    }
    if not timings:  # webhook and the floor: a 200 is a completed execution
        completed = sent.statuses().get("200", 0)
        end = sent.last_done
        figures["request_ms"] = _ms([a.done_at - a.sent_at for a in sent.answers])
    else:
        ended = [t for t in timings if t.finished is not None]
        completed = sum(t.status == "succeeded" for t in timings)
        end = max(t.finished for t in ended if t.finished is not None)
        figures["execution_statuses"] = dict(Counter(t.status for t in timings))
        figures["created_to_started_ms"] = _ms(
            [t.started - t.created for t in timings if t.started is not None]
        )
        figures["run_ms"] = _ms([t.finished - t.started for t in ended if t.started and t.finished])
    seconds = end - sent.first_sent
    figures |= {
        "completed": completed,
        "seconds": round(seconds, 3),
        "executions_per_s": round(completed / seconds, 1),
    }
    return figures


def probe_figures(sent: loadgen.CountResult, timings: list[store.Timing]) -> dict[str, Any]:
    """Send -> process started (the time /bin/date printed); Hookrunner's own stamps too."""
    figures: dict[str, Any] = {"statuses": sent.statuses(), "errors": sent.errors}
    if not timings:
        execs = [(a.sent_at, float(a.body)) for a in sent.answers if a.status == 200]
        figures["send_to_exec_ms"] = _ms([exec_at - sent_at for sent_at, exec_at in execs])
        return figures
    by_id = {t.id: t for t in timings}
    send_to_exec, created_to_exec = [], []
    for answer in sent.answers:
        timing = by_id.get(json.loads(answer.body).get("execution_id", ""))
        if timing is None or timing.first_line is None:
            continue
        send_to_exec.append(float(timing.first_line) - answer.sent_at)
        created_to_exec.append(float(timing.first_line) - timing.created)
    figures |= {
        "executions_with_output": len(send_to_exec),
        "send_to_exec_ms": _ms(send_to_exec),
        "created_to_started_ms": _ms(
            [t.started - t.created for t in timings if t.started is not None]
        ),
        "created_to_exec_ms": _ms(created_to_exec),
    }
    return figures


# --- report --------------------------------------------------------------------------------


def summarise(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    def rate(target: str) -> list[float]:
        return [r[target]["burst"]["executions_per_s"] for r in rounds]

    def cpu(target: str) -> list[float]:
        return [r[target]["burst"]["server_cpu_ms_per_execution"] for r in rounds]

    def ratio_of(top: str, bottom: str) -> list[float]:
        return [t / b for t, b in zip(rate(top), rate(bottom), strict=True)]

    ratios = ratio_of("hookrunner", "webhook")
    cpu_ratios = [h / w for h, w in zip(cpu("hookrunner"), cpu("webhook"), strict=True) if w]
    ratio = statistics.median(ratios)
    floor = ratio_of("floor", "webhook")
    above_floor = ratio_of("hookrunner", "floor")
    probe_p50 = [r["hookrunner"]["probe"]["created_to_exec_ms"]["p50"] for r in rounds]
    return {
        "webhook_executions_per_s": rate("webhook"),
        "hookrunner_executions_per_s": rate("hookrunner"),
        "ratio_per_round": [round(x, 4) for x in ratios],
        "ratio": round(ratio, 4),
        "ratio_target": TARGET_RATIO,
        "ratio_met": ratio >= TARGET_RATIO,
        # The floor: what Flask under Gunicorn's gevent worker reaches with no record at all.
        "floor_executions_per_s": rate("floor"),
        "floor_ratio_per_round": [round(x, 4) for x in floor],
        "floor_ratio": round(statistics.median(floor), 4),
        "hookrunner_floor_ratio": round(statistics.median(above_floor), 4),
        "server_cpu_ms_per_execution": {target: cpu(target) for target in TARGETS},
        "server_cpu_ratio": round(statistics.median(cpu_ratios), 3) if cpu_ratios else None,
        "received_to_process_started_p50_ms": probe_p50,
        "received_to_process_started_target_ms": PROBE_P50_TARGET_MS,
        "received_to_process_started_met": max(probe_p50) < PROBE_P50_TARGET_MS,
    }


def print_report(rounds: list[dict[str, dict[str, Any]]], summary: dict[str, Any]) -> None:
    print(
        f"{'round':>5} {'target':<11} {'completed':>9} {'seconds':>8} {'exec/s':>8} {'foreign':>8}"
        f" {'cpu ms/exec':>11}"
    )
    for index, pair in enumerate(rounds, start=1):
        for target in TARGETS:
            burst = pair[target]["burst"]
            print(
                f"{index:>5} {target:<11} {burst['completed']:>9} {burst['seconds']:>8.2f}"
                f" {burst['executions_per_s']:>8.1f} {pair[target]['foreign_cpus']:>8.2f}"
                f" {burst['server_cpu_ms_per_execution']:>11.2f}"
            )
        hr = pair["hookrunner"]
        wait = hr["burst"]["created_to_started_ms"]
        print(
            f"      hookrunner under the burst: received -> claimed p50 {wait['p50']:.1f} ms,"
            f" p99 {wait['p99']:.1f} ms (queueing); 202s took {hr['burst']['answers_s']:.2f} s"
        )
        roles = hr["burst"].get("cpu_ms_per_execution_by_role")
        if roles:
            shares = ", ".join(f"{role} {ms:.2f}" for role, ms in roles.items())
            print(f"      hookrunner CPU ms per execution by role: {shares}")
        for target in TARGETS:
            probe = pair[target]["probe"]
            line = f"      probe {target}: send -> process started {_pct(probe['send_to_exec_ms'])}"
            if target == "hookrunner":
                line += (
                    f"; received -> claimed {_pct(probe['created_to_started_ms'])}"
                    f"; received -> process started {_pct(probe['created_to_exec_ms'])}"
                )
            print(line)
    ratio = summary["ratio"]
    print("\n" + harness.ratio_verdict("executions/s hookrunner/webhook", ratio, TARGET_RATIO))
    if summary["server_cpu_ratio"] is not None:
        print(f"server CPU per execution hookrunner/webhook: {summary['server_cpu_ratio']:.2f}x")
    print(
        f"floor (bare Flask: HMAC, spawn, answer) / webhook: {summary['floor_ratio']:.2f}x;"
        f" hookrunner / floor: {summary['hookrunner_floor_ratio']:.2f}x"
    )
    verdict = "met" if summary["received_to_process_started_met"] else "NOT met"
    print(
        f"received -> process started p50 {summary['received_to_process_started_p50_ms']} ms"
        f" (target < {PROBE_P50_TARGET_MS:.0f} ms: {verdict})"
    )
    harness.print_flags(rounds)


def _pct(values: dict[str, float]) -> str:
    return f"p50 {values['p50']:.2f} / p99 {values['p99']:.2f} ms" if values else "n/a"


def flags(result: dict[str, Any]) -> list[str]:
    problems = []
    burst = result["burst"]
    if burst["completed"] != burst["sent"]:
        problems.append(f"{burst['completed']} of {burst['sent']} executions completed")
    if burst["errors"] or result["probe"]["errors"]:
        problems.append(f"client errors {burst['errors']} {result['probe']['errors']}")
    profiled = bool(result.get("profile"))
    return problems + harness.run_flags(result["foreign_cpus"], result.get("server_log"), profiled)


# --- main ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, harness.Common]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="webhooks in the measured burst")
    parser.add_argument("--concurrency", type=int, default=4, help="client connections = pool")
    parser.add_argument("--warmup", type=int, default=100, help="webhooks before measuring")
    parser.add_argument("--probe-count", type=int, default=100)
    parser.add_argument("--probe-rate", type=float, default=20, help="probe webhooks per second")
    parser.add_argument("--rounds", type=int, default=1, help="webhook/hookrunner pairs")
    parser.add_argument("--timeout", type=float, default=120, help="max seconds per phase")
    parser.add_argument(
        "--store", choices=("sqlite", "postgresql"), default="sqlite", help="Hookrunner's store"
    )
    parser.add_argument(
        "--deployment",
        choices=("default", "single"),
        default="default",
        help="default: web workers + engine processes per CPU; single: one worker runs both",
    )
    harness.add_common_args(parser)
    args = parser.parse_args(argv)
    if not 1 <= args.count <= 20_000 or not 1 <= args.concurrency <= 64:
        parser.error("--count must be 1..20000 and --concurrency 1..64")
    if not 1 <= args.rounds <= 5 or not 0 < args.probe_rate <= 200:
        parser.error("--rounds must be 1..5 and --probe-rate in (0, 200]")
    if not 1 <= args.warmup <= 5000 or not 1 <= args.probe_count <= 1000:
        parser.error("--warmup must be 1..5000 and --probe-count 1..1000")
    args.timeout = min(max(args.timeout, 10), 300)
    if not shutil.which(servers.WEBHOOK_BINARY):
        parser.error(f"{servers.WEBHOOK_BINARY} missing: {servers.WEBHOOK_INSTALL_HINT}")
    name = "dispatch" if args.store == "sqlite" else "dispatch-postgresql"
    return args, harness.parse_common(parser, args, name)


def main(argv: list[str] | None = None) -> int:
    args, common = parse_args(argv)
    with harness.workspace(common) as workdir:
        described = machine.describe(workdir, common.root) | {"webhook": servers.webhook_version()}
        server_cpu, client_cpu = harness.choose_cpus(common.pin)
        harness.pin_self(client_cpu)

        def run(round_no: int, name: str) -> dict[str, Any]:
            profile = common.profile(f"-r{round_no}")
            result = measure(Target(name, args, common), round_no, workdir, profile)
            return result | {"flags": flags(result)}

        rounds = [
            harness.measure_round(n, TARGETS, run, lambda r: r["foreign_cpus"], common.retries)
            for n in range(1, args.rounds + 1)
        ]
    summary = summarise(rounds)
    print_report(rounds, summary)
    harness.write_results(
        common.name,
        common.output,
        {
            "machine": described,
            "params": harness.params(args, common.output),
            "pinning": {"server_cpu": server_cpu, "client_cpu": client_cpu},
            "hookrunner_trigger": _hookrunner_trigger("bench", ["/bin/true"], args.concurrency)
            | {"auth": {"scheme": "github", "secrets": ["***"]}},
            "webhook_hook": _webhook_hook("bench", "/bin/true") | {"trigger-rule": "hmac ***"},
            "rounds": rounds,
            "summary": summary,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
