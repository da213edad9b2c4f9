"""PostgreSQL ingest: 1, 2 and 4 workers on PostgreSQL against 1 worker on SQLite, same run.

Variants (each a fresh server, and on PostgreSQL a fresh database, with
``bench/ingest.py``'s Hookrunner workload, engine off, alternating order per
round, see ``ingest_variants.py``): ``sqlite-1`` (the baseline), ``pg-1``,
``pg-2`` and ``pg-4`` workers. Nothing is pinned (several workers need both
CPUs; PostgreSQL itself shares them too). Targets (docs/architecture.md,
"Targets"): ``pg-2`` >= 1.6 x ``pg-1``, and ``pg-1`` within 20 % of ``sqlite-1``::

    python bench/postgres.py --snapshot HEAD [--rounds 2]

Needs the local PostgreSQL server (``postgresql://postgres@127.0.0.1:5432``).
"""

from __future__ import annotations

import sys
from typing import Any

import ingest_variants
import store

BASELINE = "sqlite-1"
VARIANTS = {
    BASELINE: {"GUNICORN_WORKERS": "1"},
    **{
        f"pg-{n}": {"GUNICORN_WORKERS": str(n), "DATABASE_URL": store.FRESH_POSTGRES}
        for n in (1, 2, 4)
    },
}


def report(summary: dict[str, Any]) -> None:
    ratios = {name: summary["variants"][name]["ratio"] for name in VARIANTS}
    scaling = ratios["pg-2"] / ratios["pg-1"]
    summary["pg_2_over_1"] = round(scaling, 4)
    summary["pg_1_over_sqlite_1"] = ratios["pg-1"]
    print(f"\nPostgreSQL 2 workers / 1 worker: {scaling:.2f}x (target >= 1.6x)")
    print(f"PostgreSQL 1 worker / SQLite 1 worker: {ratios['pg-1']:.2f}x (target >= 0.8x)")
    print(f"PostgreSQL 4 workers / SQLite 1 worker: {ratios['pg-4']:.2f}x")


def main(argv: list[str] | None = None) -> int:
    description = __doc__.split("\n\n")[0]
    return ingest_variants.main_unpinned(argv, description, "postgres", VARIANTS, BASELINE, report)


if __name__ == "__main__":
    sys.exit(main())
