"""Ingest throughput of Hookrunner under a few server environments, in alternating rounds.

The workload is exactly ``bench/ingest.py``'s Hookrunner target (wrk, unique
GitHub-signed 1 KiB deliveries, engine off, warm-up then a measured run, a
fresh server per run); only the server environment differs between variants
(``SENTRY_DSN``, ``GUNICORN_WORKERS``, ...). Each round measures every variant
once, in an order that rotates from round to round; each variant's figure is
its req/s as a ratio of the baseline variant's in the same round, and the
median over rounds is reported. Used by ``sentry_overhead.py`` and ``scaling.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import harness
import ingest
import signing


def add_load_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, default=2, help="rounds over every variant")
    parser.add_argument("--duration", type=float, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of warm-up per run")
    parser.add_argument("--connections", type=int, default=50)


def params(args: argparse.Namespace, common: harness.Common, pin: bool) -> ingest.Params:
    if not 1 <= args.rounds <= 5 or not 1 <= args.duration <= 60 or not 1 <= args.warmup <= 30:
        raise SystemExit("--rounds must be 1..5, --duration 1..60 s and --warmup 1..30 s")
    return ingest.Params(
        common=dataclasses.replace(common, pin=pin and common.pin),
        duration=args.duration,
        warmup=args.warmup,
        connections=max(1, min(args.connections, 1000)),
        threads=1,
        rate=200,
        rate_duration=10,
        body_bytes=1024,
        rounds=args.rounds,
        engine=False,
    )


def run(
    base: ingest.Params,
    variants: dict[str, dict[str, str]],
    workdir: Path,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, dict[str, Any]]]:
    """Every variant once per round (rotating order); each result as ``ingest.saturate``'s.

    ``on_result`` is called with each attempt's result as soon as its server has stopped.
    """
    template = signing.make_template(base.body_bytes)

    def measure(round_no: int, name: str) -> dict[str, Any]:
        variant = dataclasses.replace(base, server_env=variants[name])
        profile = base.common.profile(f"-r{round_no}-{name}")
        label = f"{name}-r{round_no}"
        result = ingest.saturate("hookrunner", round_no, workdir, variant, template, profile, label)
        if on_result is not None:
            on_result(result)
        result["flags"] = ingest.flags(result)
        return result

    def foreign(result: dict[str, Any]) -> float:
        return float(result["main"]["foreign_cpus"])

    return [
        harness.measure_round(round_no, list(variants), measure, foreign, base.common.retries)
        for round_no in range(1, base.rounds + 1)
    ]


def summarise(rounds: list[dict[str, dict[str, Any]]], baseline: str) -> dict[str, Any]:
    """Median req/s per variant and each variant's median ratio to ``baseline``."""
    summary: dict[str, Any] = {"baseline": baseline, "variants": {}}
    for name in rounds[0]:
        rps = [r[name]["main"]["rps"] for r in rounds]
        ratios = [r[name]["main"]["rps"] / r[baseline]["main"]["rps"] for r in rounds]
        summary["variants"][name] = {
            "rps_per_round": rps,
            "rps_median": statistics.median(rps),
            "ratio_per_round": [round(x, 4) for x in ratios],
            "ratio": round(statistics.median(ratios), 4),
        }
    summary["flagged"] = any(r[name]["flags"] for r in rounds for name in r)
    return summary


def print_rounds(rounds: list[dict[str, dict[str, Any]]], baseline: str) -> None:
    print(f"{'round':>5} {'variant':<18} {'req/s':>9} {'vs ' + baseline:>14} {'foreign':>8}")
    for index, results in enumerate(rounds, start=1):
        base_rps = results[baseline]["main"]["rps"]
        for name, result in results.items():
            main = result["main"]
            print(
                f"{index:>5} {name:<18} {main['rps']:>9.1f} {main['rps'] / base_rps:>14.1%}"
                f" {main['foreign_cpus']:>8.2f}"
            )
    harness.print_flags(rounds)


def main_unpinned(
    argv: list[str] | None,
    description: str,
    name: str,
    variants: dict[str, dict[str, str]],
    baseline: str,
    report: Callable[[dict[str, Any]], None],
    extra: Callable[[ingest.Params, Path, dict[str, Any]], None] | None = None,
) -> int:
    """A whole unpinned variants benchmark: options, rounds, table, ``report``, results file.

    ``report`` prints the script's own verdict lines from the summary (and may add
    figures to it before it is written). ``extra``, when given, runs further
    measurements in the same workspace after the rounds and adds them to the summary.
    """
    import machine

    parser = argparse.ArgumentParser(description=description)
    add_load_args(parser)
    harness.add_common_args(parser)
    args = parser.parse_args(argv)
    common = harness.parse_common(parser, args, name)
    base = params(args, common, pin=False)
    with harness.workspace(common) as workdir:
        described = machine.describe(workdir, common.root)
        rounds = run(base, variants, workdir)
        summary = summarise(rounds, baseline)
        if extra is not None:
            extra(base, workdir, summary)
    print_rounds(rounds, baseline)
    report(summary)
    harness.write_results(
        common.name,
        common.output,
        {
            "machine": described,
            "params": harness.params(args, common.output),
            "variants": variants,
            "pinning": None,
            "rounds": rounds,
            "summary": summary,
        },
    )
    return 0
