"""Row ids and insert cost: random (UUID 4) vs time-ordered (UUID 7) ids, in process.

Records accepted webhooks the way ingest does - a dedup key claim, a delivery with a
1 KiB body and a queued execution, in transactions of ``--batch`` webhooks (a group
commit) - on a fresh SQLite file with Hookrunner's migrations, once with ids from
``uuid.uuid4().hex`` (as before) and once from :func:`app.store.row_ids.new_row_id`.
Prints microseconds per webhook for each block of ``--block`` webhooks as the tables
grow, split into the statements and the commit (which writes every dirtied page to the
WAL), and the database's size::

    python bench/row_ids.py [--webhooks 60000] [--block 20000] [--batch 16]

No gevent, no HTTP: the SQL and its pages alone. The dedup keys are random in both runs
(they are the senders' delivery ids).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import harness  # puts the project root on sys.path, for app
import machine

from app.clock import utc_now_iso
from app.store import dedup_keys, executions, triggers
from app.store import deliveries as deliveries_sql
from app.store.migrations import migrate
from app.store.row_ids import new_row_id
from app.store.sqlite.database import SQLiteDatabase

GENERATORS: dict[str, Callable[[], str]] = {
    "uuid4": lambda: uuid.uuid4().hex,
    "row_ids": new_row_id,
}
TRIGGER = "deploy"


def _delivery(delivery_id: str, execution_id: str, key: str, now: str) -> Any:
    return deliveries_sql.DeliveryRecord(
        id=delivery_id,
        trigger=TRIGGER,
        received_at=now,
        request_id=uuid.uuid4().hex,
        outcome="accepted",
        reason=None,
        dedup_key=key,
        execution_id=execution_id,
        replay_of=None,
        method="POST",
        content_type="application/json",
        query={},
        headers={f"x-header-{n}": "v" * 30 for n in range(12)},
        body=os.urandom(1024),
        report={"stages_ms": {"verify": 0.05, "record": 0.4}},
    )


def measure(kind: str, workdir: Path, webhooks: int, block: int, batch: int) -> dict[str, Any]:
    db = SQLiteDatabase(str(workdir / f"{kind}.db"))
    migrate(db)
    triggers.insert(db, TRIGGER, "", True, "{}")  # the dedup keys' foreign key
    make_id = GENERATORS[kind]
    blocks: list[dict[str, float]] = []
    statements = commits = 0.0
    for start in range(0, webhooks, batch):
        records = []
        for _ in range(batch):
            records.append((make_id(), make_id(), uuid.uuid4().hex, utc_now_iso()))
        with db.write() as conn:
            began = time.perf_counter()
            for delivery_id, execution_id, key, now in records:
                dedup_keys.claim(
                    conn,
                    trigger=TRIGGER,
                    key=key,
                    delivery_id=delivery_id,
                    execution_id=execution_id,
                    now=now,
                    expires_at=now,
                )
                deliveries_sql.insert(conn, _delivery(delivery_id, execution_id, key, now))
                executions.insert_queued(
                    conn,
                    execution_id=execution_id,
                    trigger=TRIGGER,
                    delivery_id=delivery_id,
                    request_id=None,
                    created_at=now,
                    report={},
                )
            committing = time.perf_counter()
        statements += committing - began
        commits += time.perf_counter() - committing
        if (start + batch) % block == 0:
            with db.read() as conn:  # as the server's checkpointer would, between blocks
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            blocks.append(
                {
                    "webhooks": start + batch,
                    "statements_us": round(statements / block * 1e6, 1),
                    "commit_us": round(commits / block * 1e6, 1),
                }
            )
            statements = commits = 0.0
    db.close()
    size = (workdir / f"{kind}.db").stat().st_size
    return {"blocks": blocks, "db_bytes": size}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--webhooks", type=int, default=60_000)
    parser.add_argument("--block", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=16, help="webhooks per transaction")
    harness.add_output_arg(parser)
    args = parser.parse_args(argv)
    if not 1 <= args.batch <= 256 or args.block % args.batch or args.webhooks % args.block:
        parser.error("--batch 1..256 must divide --block, which must divide --webhooks")
    output = harness.output_path("row-ids", args.output)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="hookrunner-row-ids-") as scratch:
        described = machine.describe(Path(scratch), harness.PROJECT_ROOT)
        for kind in GENERATORS:
            results[kind] = measure(kind, Path(scratch), args.webhooks, args.block, args.batch)
    print(f"{'ids':<8} {'after':>8} {'statements us':>14} {'commit us':>10} {'total us':>9}")
    for kind, result in results.items():
        for figures in result["blocks"]:
            total = figures["statements_us"] + figures["commit_us"]
            print(
                f"{kind:<8} {figures['webhooks']:>8} {figures['statements_us']:>14.1f}"
                f" {figures['commit_us']:>10.1f} {total:>9.1f}"
            )
        print(f"{kind:<8} database {result['db_bytes'] / 1e6:.1f} MB")
    harness.write_results(
        "row-ids", output, {"machine": described, "params": vars(args), "results": results}
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
