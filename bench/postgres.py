"""PostgreSQL ingest: 1, 2 and 4 workers on PostgreSQL against 1 worker on SQLite, same run.

Variants (each a fresh server, and on PostgreSQL a fresh database, with
``bench/ingest.py``'s Hookrunner workload, engine off, alternating order per
round, see ``ingest_variants.py``): ``sqlite-1`` (the baseline), ``pg-1``,
``pg-2`` and ``pg-4`` workers. After the rounds, as many runs of *two instances*
(two Gunicorn servers, one worker each, one shared fresh database, each driven
by its own wrk with half the connections; their req/s summed) are compared with
``pg-1``: what a second host adds. Nothing is pinned (several workers need both
CPUs; PostgreSQL itself shares them too). Targets (docs/architecture.md,
"Targets"): ``pg-2`` >= 1.6 x ``pg-1``, and ``pg-1`` within 20 % of ``sqlite-1``::

    python bench/postgres.py --snapshot HEAD [--rounds 2]

Needs the local PostgreSQL server (``postgresql://postgres@127.0.0.1:5432``).
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import harness
import ingest
import ingest_variants
import machine
import servers
import signing
import store

BASELINE = "sqlite-1"
VARIANTS = {
    BASELINE: {"GUNICORN_WORKERS": "1"},
    **{
        f"pg-{n}": {"GUNICORN_WORKERS": str(n), "DATABASE_URL": store.FRESH_POSTGRES}
        for n in (1, 2, 4)
    },
}


def two_instances(base: ingest.Params, workdir: Path, round_no: int) -> dict[str, Any]:
    """Two one-worker servers on one fresh database, loaded side by side; summed req/s."""
    name = f"hr_bench_{uuid.uuid4().hex[:10]}"
    url = store.create_postgres(name)
    params = dataclasses.replace(
        base,
        connections=max(1, base.connections // 2),
        server_env={"GUNICORN_WORKERS": "1", "DATABASE_URL": url},
    )
    template = signing.make_template(base.body_bytes)
    env, root = params.server_env, base.common.root
    label = f"pg-2x1-r{round_no}"
    try:
        with (
            servers.gunicorn(workdir, f"{label}-a", None, None, root, False, env) as first,
            servers.gunicorn(workdir, f"{label}-b", None, None, root, False, env) as second,
        ):
            servers.create_trigger(first)  # the second instance reads it from the database
            hosts = [first, second]

            def both(phase: str, seconds: float, count: int) -> list[Any]:
                results: list[Any] = [None, None]

                def drive(index: int) -> None:
                    results[index] = ingest.run_phase(
                        hosts[index],
                        ingest.target_path("hookrunner"),
                        phase,
                        count,
                        seconds,
                        params,
                        template,
                    )

                threads = [threading.Thread(target=drive, args=(i,)) for i in range(2)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                return results

            warm = both("warmup", params.warmup, ingest.pool_size(20_000, params.warmup))
            roots = [host.process.pid for host in hosts]
            before = machine.cpu_sample(roots)
            pool = ingest.pool_size(sum(result.rps for result in warm), params.duration)
            main = both("main", params.duration, pool)
            after = machine.cpu_sample(roots)
    finally:
        store.drop_postgres(name)
    foreign = machine.foreign_cpus(before, after)
    return {
        "round": round_no,
        "rps_per_instance": [result.rps for result in main],
        "rps": round(sum(result.rps for result in main), 1),
        "statuses": [result.statuses for result in main],
        "foreign_cpus": foreign,
        "flags": harness.run_flags(foreign, None, False),
    }


def measure_two_instances(base: ingest.Params, workdir: Path, summary: dict[str, Any]) -> None:
    runs = [two_instances(base, workdir, n) for n in range(1, base.rounds + 1)]
    rps = statistics.median(run["rps"] for run in runs)
    pg_1 = summary["variants"]["pg-1"]["rps_median"]
    summary["two_instances"] = {"runs": runs, "rps_median": rps, "over_pg_1": round(rps / pg_1, 4)}
    for run in runs:
        print(
            f"two instances, round {run['round']}: {run['rps']:.1f} req/s"
            f" ({' + '.join(f'{x:.1f}' for x in run['rps_per_instance'])};"
            f" foreign {run['foreign_cpus']:.2f})"
        )


def report(summary: dict[str, Any]) -> None:
    ratios = {name: summary["variants"][name]["ratio"] for name in VARIANTS}
    scaling = ratios["pg-2"] / ratios["pg-1"]
    summary["pg_2_over_1"] = round(scaling, 4)
    summary["pg_1_over_sqlite_1"] = ratios["pg-1"]
    print(f"\nPostgreSQL 2 workers / 1 worker: {scaling:.2f}x (target >= 1.6x)")
    print(f"PostgreSQL 1 worker / SQLite 1 worker: {ratios['pg-1']:.2f}x (target >= 0.8x)")
    print(f"PostgreSQL 4 workers / SQLite 1 worker: {ratios['pg-4']:.2f}x")
    two = summary.get("two_instances")
    if two is not None:
        print(f"PostgreSQL two instances / one instance (1 worker each): {two['over_pg_1']:.2f}x")


def main(argv: list[str] | None = None) -> int:
    description = __doc__.split("\n\n")[0]
    return ingest_variants.main_unpinned(
        argv, description, "postgres", VARIANTS, BASELINE, report, measure_two_instances
    )


if __name__ == "__main__":
    sys.exit(main())
