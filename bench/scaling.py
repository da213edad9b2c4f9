"""Scaling: ingest throughput with one Gunicorn worker vs two, same run.

Variants ``1-worker`` (``GUNICORN_WORKERS=1``, the baseline) and ``2-workers``,
each on a fresh server with ``bench/ingest.py``'s Hookrunner workload (engine
off), alternating order per round (see ``ingest_variants.py``). Nothing is
pinned: two workers need both CPUs, so wrk (and this script) share the CPUs
with the server here, unlike in the other benchmarks; the single-worker
baseline runs unpinned too, so the ratio compares like with like. Both workers
write to the same SQLite file. No target; the figure is the 2/1 ratio::

    python bench/scaling.py --snapshot HEAD [--rounds 2]
"""

from __future__ import annotations

import sys
from typing import Any

import ingest_variants

BASELINE = "1-worker"
VARIANTS = {BASELINE: {"GUNICORN_WORKERS": "1"}, "2-workers": {"GUNICORN_WORKERS": "2"}}


def report(summary: dict[str, Any]) -> None:
    ratio = summary["variants"]["2-workers"]["ratio"]
    print(f"\n2 workers / 1 worker (median): {ratio:.2f}x (server, wrk and client share 2 CPUs)")


def main(argv: list[str] | None = None) -> int:
    description = __doc__.split("\n\n")[0]
    return ingest_variants.main_unpinned(argv, description, "scaling", VARIANTS, BASELINE, report)


if __name__ == "__main__":
    sys.exit(main())
