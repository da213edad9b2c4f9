"""Sentry overhead: ingest throughput with ``SENTRY_DSN`` set vs unset, same run.

Variants (each a fresh server, ``bench/ingest.py``'s Hookrunner workload,
alternating order per round, see ``ingest_variants.py``):

* ``no-dsn``: ``SENTRY_DSN`` empty (the SDK is not initialised) - the baseline;
* ``dsn-traces-0``: a DSN pointing at a local fake Sentry ingest
  (``tests/fake_sentry.py``, a thread of this process on 127.0.0.1),
  ``SENTRY_TRACES_SAMPLE_RATE=0``: the SDK and its Flask integration are on,
  no transactions are sent;
* ``dsn-traces-<r>`` (``--traces-rate``, default 0.1): the same, with that share
  of requests traced and sent.

Target (docs/architecture.md): Sentry enabled keeps >= 85 % of the throughput. The
collector's counts (envelopes, item types) are recorded per variant to show the
SDK really sent to it. Server pinned to the first CPU; wrk and the collector
share the second::

    python bench/sentry_overhead.py --snapshot HEAD [--rounds 2] [--traces-rate 0.1]
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import harness
import ingest_variants
import machine

from tests.fake_sentry import Collector, fake_sentry

TARGET = 0.85
BASELINE = "no-dsn"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ingest_variants.add_load_args(parser)
    parser.add_argument("--traces-rate", type=float, default=0.1)
    harness.add_common_args(parser)
    args = parser.parse_args(argv)
    if not 0 < args.traces_rate <= 1:
        parser.error("--traces-rate must be in (0, 1]")
    common = harness.parse_common(parser, args, "sentry-overhead")
    base = ingest_variants.params(args, common, pin=True)
    harness.pin_self(harness.choose_cpus(common.pin)[1])
    with harness.workspace(common) as workdir, fake_sentry() as (collector, dsn):
        described = machine.describe(workdir, common.root)
        variants = {
            BASELINE: {"SENTRY_DSN": ""},
            "dsn-traces-0": {"SENTRY_DSN": dsn, "SENTRY_TRACES_SAMPLE_RATE": "0"},
            f"dsn-traces-{args.traces_rate:g}": {
                "SENTRY_DSN": dsn,
                "SENTRY_TRACES_SAMPLE_RATE": f"{args.traces_rate:g}",
            },
        }
        rounds = ingest_variants.run(base, variants, workdir, Counting(collector).after)
    summary = ingest_variants.summarise(rounds, BASELINE)
    ingest_variants.print_rounds(rounds, BASELINE)
    print()
    worst = min(v["ratio"] for name, v in summary["variants"].items() if name != BASELINE)
    for name, variant in summary["variants"].items():
        if name != BASELINE:
            print(harness.ratio_verdict(f"{name} / {BASELINE} (median)", variant["ratio"], TARGET))
    summary |= {"target": TARGET, "worst_ratio": worst, "met": worst >= TARGET}
    shown = {
        name: {
            k: ("http://publickey@127.0.0.1:<port>/42" if k == "SENTRY_DSN" and v else v)
            for k, v in env.items()
        }
        for name, env in variants.items()
    }
    harness.write_results(
        common.name,
        common.output,
        {
            "machine": described,
            "params": harness.params(args, common.output),
            "variants": shown,
            "rounds": rounds,
            "summary": summary,
        },
    )
    return 0


class Counting:
    """Attaches what the collector received during each run to that run's result."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self.seen = collector.summary()

    def after(self, result: dict[str, Any]) -> None:
        now = self.collector.summary()
        items = {
            kind: count - self.seen["items"].get(kind, 0) for kind, count in now["items"].items()
        }
        result["sentry_collector"] = {
            "envelopes": now["envelopes"] - self.seen["envelopes"],
            "items": {kind: count for kind, count in items.items() if count},
        }
        self.seen = now


if __name__ == "__main__":
    sys.exit(main())
