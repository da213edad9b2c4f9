"""PostgreSQL ingest cost: CPU per request, commits per request and what backends wait for.

req/s on a shared machine moves with everyone else's load; these do not: the
CPU seconds of the Gunicorn tree and of the database's PostgreSQL backends per
request (from /proc), transactions committed per request
(``pg_stat_database.xact_commit``), and - sampled every 20 ms during the run -
the wait events of the database's active backends (``Lock:tuple`` /
``Lock:transactionid``: waiting for another ingest's row lock; ``IO:WALSync``:
flushing a commit). One server (``--workers``), a fresh database, the
``ingest.py`` workload, nothing pinned::

    python bench/pg_ingest_cost.py --snapshot HEAD --workers 2 [--duration 8]

Needs the local PostgreSQL server (``postgresql://postgres@127.0.0.1:5432``).
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import harness
import ingest
import machine
import servers
import signing
import store

_HZ = 100


def _ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def measure(root: Path, workers: int, duration: float) -> dict[str, Any]:
    import psycopg

    params = ingest.parse_args(
        ["--project-root", str(root), "--no-pin", "--duration", str(duration)]
    )
    workdir = Path(tempfile.mkdtemp(prefix="pg-ingest-cost-"))
    env = {"GUNICORN_WORKERS": str(workers), "DATABASE_URL": store.FRESH_POSTGRES}
    path = ingest.target_path("hookrunner")
    template = signing.make_template(params.body_bytes)
    with (
        psycopg.connect(store.PG_ADMIN_URL, autocommit=True) as admin,
        servers.gunicorn(workdir, "cost", None, None, root, False, env) as server,
    ):
        servers.create_trigger(server)
        name = str(server.db_path).rpartition("/")[2]
        ingest.run_phase(server, path, "warmup", 20_000, params.warmup, params, template)

        def backends() -> list[int]:
            rows = admin.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,))
            return [int(row[0]) for row in rows]

        def commits() -> int:
            row = admin.execute(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (name,)
            ).fetchone()
            return int(row[0]) if row else 0

        waits: collections.Counter[str] = collections.Counter()
        stop = threading.Event()

        def sample() -> None:
            with psycopg.connect(store.PG_ADMIN_URL, autocommit=True) as sampler:
                while not stop.is_set():
                    for kind, event in sampler.execute(
                        "SELECT wait_event_type, wait_event FROM pg_stat_activity"
                        " WHERE datname = %s AND state = 'active'"
                        " AND backend_type = 'client backend'",
                        (name,),
                    ):
                        waits[f"{kind}:{event}" if kind else "on CPU"] += 1
                    stop.wait(0.02)

        first = backends()
        pg_before, tree_before = (
            sum(map(_ticks, first)),
            machine.tree_cpu_seconds([server.process.pid]),
        )
        commits_before, busy_before, started = commits(), machine.cpu_sample([]), time.monotonic()
        sampler = threading.Thread(target=sample)
        sampler.start()
        result = ingest.run_phase(server, path, "main", 40_000, duration, params, template)
        stop.set()
        sampler.join()
        pg_after = sum(map(_ticks, set(first) | set(backends())))
        tree_after = machine.tree_cpu_seconds([server.process.pid])
        commits_after, busy_after = commits(), machine.cpu_sample([])
    elapsed = time.monotonic() - started
    count = max(1, result.requests)
    total = sum(waits.values()) or 1
    return {
        "root": str(root),
        "workers": workers,
        "rps": result.rps,
        "statuses": result.statuses,
        "gunicorn_cpu_us_per_request": round(1e6 * (tree_after - tree_before) / count),
        "postgres_cpu_us_per_request": round(1e6 * (pg_after - pg_before) / _HZ / count),
        "commits_per_request": round((commits_after - commits_before) / count, 3),
        "machine_busy_cpus": round((busy_after.busy - busy_before.busy) / _HZ / elapsed, 2),
        "active_backend_waits": {k: round(v / total, 3) for k, v in waits.most_common(8)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--duration", type=float, default=8)
    parser.add_argument("--snapshot", metavar="REV", help="serve a git archive of this commit")
    parser.add_argument("--project-root", type=Path, default=harness.PROJECT_ROOT)
    args = parser.parse_args(argv)
    root = args.project_root
    if args.snapshot:
        root = machine.make_snapshot(
            harness.PROJECT_ROOT, args.snapshot, Path(tempfile.mkdtemp(prefix="pg-cost-snap-"))
        )
    outcome = measure(root, args.workers, args.duration)
    print(json.dumps(outcome, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
