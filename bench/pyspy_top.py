"""Summarise a py-spy ``--format=raw`` profile (collapsed stacks) as a table.

``bench/ingest.py --py-spy $(which py-spy)`` samples the Hookrunner worker during
its measured run and writes ``<output>-r<N>-hookrunner.pyspy.txt``. This prints
the share of samples in which each function is on the stack (inclusive) and at
the top (self), for the functions that matter most::

    python bench/pyspy_top.py bench/results/ingest-...-hookrunner.pyspy.txt [--top 40]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

_LOCATION = re.compile(r" \((?P<file>[^:()]+):\d+\)$")


def frame_name(frame: str) -> str:
    """``func (path/to/file.py:123)`` -> ``func (to/file.py)``: one row per function."""
    match = _LOCATION.search(frame)
    if match is None:
        return frame
    short = "/".join(Path(match["file"]).parts[-2:])
    return f"{frame[: match.start()]} ({short})"


def summarise(path: Path) -> tuple[int, Counter[str], Counter[str]]:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [frame_name(frame) for frame in stack.split(";")]
        own[frames[-1]] += samples
        for name in set(frames):
            inclusive[name] += samples
    return total, inclusive, own


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args(argv)
    total, inclusive, own = summarise(args.profile)
    if not total:
        print("no samples", file=sys.stderr)
        return 1
    print(f"{total} samples\n\n{'incl %':>7} {'self %':>7}  function")
    for name, samples in inclusive.most_common(args.top):
        print(f"{100 * samples / total:>7.1f} {100 * own[name] / total:>7.1f}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
