"""``tritondiv replay OUT/manifest.json``: rebuild a dataset from its manifest and check that
the data is byte-identical (sha256) to the recorded one.

Also takes a dataset folder, or a ladder folder / its ``ladder.json`` (every level). The pool
is loaded again with the recorded loader options and its fingerprint checked first; the
dataset is selected again (same strategy, level, size, seed and options) into a temporary
folder, or ``--out``. Prints ``identical`` per dataset (exit 0), else names the first
differing record (exit 1).
"""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "replay",
        help="rebuild a dataset (or a ladder) from its manifest; check it is byte-identical",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "target",
        metavar="MANIFEST",
        help="a dataset's manifest.json or folder, or a ladder's ladder.json or folder",
    )
    p.add_argument(
        "--out", metavar="DIR", help="write the rebuilt dataset here (default: a temporary folder)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tritondiv.replay import replay

    results = replay(
        args.target, out=args.out, log=lambda msg: print(msg, file=sys.stderr, flush=True)
    )
    for r in results:
        print(r.line())
    return 0 if all(r.identical for r in results) else 1
