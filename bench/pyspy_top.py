"""Summarise a py-spy ``--format=raw`` profile (collapsed stacks) as a table.

``bench/ingest.py --py-spy $(which py-spy)`` samples the Hookrunner worker during
its measured run and writes ``<output>-r<N>-hookrunner.pyspy.txt``. This prints
the share of samples in which each function is on the stack (inclusive) and at
the top (self), for the functions that matter most::

    python bench/pyspy_top.py bench/out/ingest-...-hookrunner.pyspy.txt [--top 40]

``--by-package`` instead charges each sample to the innermost frame that is not
the standard library (``sentry_sdk``, ``app``, ``gunicorn``, ``flask`` ...): a
standard-library call made by the Sentry SDK counts as Sentry's, so the shares
add up to 100 % and say which package the worker's time goes to.
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


def package_of(frame: str) -> str | None:
    """``f (sentry_sdk/scope.py:12)`` -> ``sentry_sdk``; None for the standard library."""
    match = _LOCATION.search(frame)
    if match is None or "/" not in match["file"]:
        return None
    top = match["file"].split("/")[0].removesuffix(".py")
    return None if top in sys.stdlib_module_names else top


def by_package(path: Path) -> tuple[int, Counter[str]]:
    shares: Counter[str] = Counter()
    total = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        total += int(count)
        owners = (package_of(frame) for frame in reversed(stack.split(";")))
        shares[next((o for o in owners if o), "(standard library only)")] += int(count)
    return total, shares


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--by-package", action="store_true", help="shares by package")
    args = parser.parse_args(argv)
    if args.by_package:
        total, shares = by_package(args.profile)
        print(f"{total} samples\n\n{'share %':>7}  innermost non-stdlib package")
        for name, samples in shares.most_common(args.top):
            print(f"{100 * samples / max(total, 1):>7.1f}  {name}")
        return 0 if total else 1
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
