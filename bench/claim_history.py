"""Claim cost on PostgreSQL as a trigger's history grows, with and without the queued index.

Writes ``--finished`` finished executions and then ``--queued`` queued ones of one trigger
in one burst into a fresh database with Hookrunner's migrations, then times
``--claims`` claims of one execution each through
:func:`app.store.execution_queue.claim_batch` (the ``hookrunner_claim`` function, one
round trip), in three states:

* ``no index, as written``: the partial index of migration 0015 dropped, and the
  statistics those of before the burst (autovacuum is off for the table), as during a
  storm;
* ``no index, analysed``: after ``ANALYZE``;
* ``queued index``: the index created again, analysed (what Hookrunner runs).

Prints microseconds per claim and the shared buffers one candidate query touches::

    python bench/claim_history.py [--finished 50000] [--queued 2000] [--claims 500]

No gevent, no HTTP: one process, the SQL and its plan alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import harness  # puts the project root on sys.path, for app
import machine
import psycopg
import store

from app.clock import utc_now_iso
from app.store import execution_queue, executions, triggers
from app.store.migrations import migrate
from app.store.postgres.database import PostgresDatabase
from app.store.row_ids import new_row_id

TRIGGER = "bench"
_CANDIDATES = (
    "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT id FROM executions"
    " WHERE trigger = %s AND status = 'queued' AND (run_after IS NULL OR run_after <= %s)"
    " ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"
)


# Each state follows the one before it: (name, the statements that lead to it).
_STATES = (
    ("no index, as written", ("DROP INDEX executions_queued",)),
    ("no index, analysed", ("ANALYZE executions",)),
    (
        "queued index",
        (
            "CREATE INDEX executions_queued ON executions (trigger, created_at, id)"
            " WHERE status = 'queued'",
            "ANALYZE executions",
        ),
    ),
)


def _fill(db: PostgresDatabase, finished: int, queued: int) -> None:
    triggers.insert(db, TRIGGER, "", True, "{}")
    with db.write() as conn:
        conn.execute("ALTER TABLE executions SET (autovacuum_enabled = false)")
        conn.execute("ANALYZE executions")  # the statistics of an empty table
    for count, final in ((finished, True), (queued, False)):
        with db.write() as conn:
            for _ in range(count):
                executions.insert_queued(
                    conn,
                    execution_id=new_row_id(),
                    trigger=TRIGGER,
                    delivery_id=None,
                    request_id=None,
                    created_at=utc_now_iso(),
                    report={},
                )
            if final:
                conn.execute("UPDATE executions SET status = 'succeeded'")


def _buffers(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(_CANDIDATES, (TRIGGER, utc_now_iso())).fetchone()
        assert row is not None
        plan: dict[str, Any] = row[0][0]["Plan"]
        conn.rollback()
    return int(plan["Shared Hit Blocks"]) + int(plan["Shared Read Blocks"])


def _claims(db: PostgresDatabase, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        claimed = execution_queue.claim_batch(db, TRIGGER, "bench", 1_000_000, 1, utc_now_iso())
        assert len(claimed) == 1
    return (time.perf_counter() - started) / count * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--finished", type=int, default=50_000)
    parser.add_argument("--queued", type=int, default=2_000)
    parser.add_argument("--claims", type=int, default=500)
    args = parser.parse_args(argv)
    if args.claims * len(_STATES) > args.queued:
        parser.error(f"--queued must hold {len(_STATES)} rounds of --claims")
    name = f"bench_claims_{uuid.uuid4().hex[:8]}"
    url = store.create_postgres(name)
    results: dict[str, Any] = {
        "machine": machine.describe(Path(tempfile.gettempdir()), harness.PROJECT_ROOT),
        "finished": args.finished,
        "queued": args.queued,
    }
    db = PostgresDatabase(url, pool_size=1)
    try:
        migrate(db)
        _fill(db, args.finished, args.queued)
        for state, changes in _STATES:
            with db.write() as conn:
                for change in changes:
                    conn.execute(change)
            buffers = _buffers(url)
            per_claim = _claims(db, args.claims)
            results[state] = {"us_per_claim": round(per_claim, 1), "buffers": buffers}
            print(
                f"{state:>21}: {per_claim:8.1f} us per claim, {buffers} buffers per candidate query"
            )
    finally:
        db.close()
        store.drop_postgres(name)
    json.dump(results, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
