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

import argparse
import sys

import harness
import ingest_variants
import machine

BASELINE = "1-worker"
VARIANTS = {BASELINE: {"GUNICORN_WORKERS": "1"}, "2-workers": {"GUNICORN_WORKERS": "2"}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ingest_variants.add_load_args(parser)
    harness.add_common_args(parser)
    args = parser.parse_args(argv)
    common = harness.parse_common(parser, args, "scaling")
    base = ingest_variants.params(args, common, pin=False)
    with harness.workspace(common) as workdir:
        described = machine.describe(workdir, common.root)
        rounds = ingest_variants.run(base, VARIANTS, workdir)
    summary = ingest_variants.summarise(rounds, BASELINE)
    ingest_variants.print_rounds(rounds, BASELINE)
    ratio = summary["variants"]["2-workers"]["ratio"]
    print(f"\n2 workers / 1 worker (median): {ratio:.2f}x (server, wrk and client share 2 CPUs)")
    harness.write_results(
        common.name,
        common.output,
        {
            "machine": described,
            "params": harness.params(args, common.output),
            "variants": VARIANTS,
            "pinning": None,
            "rounds": rounds,
            "summary": summary,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
