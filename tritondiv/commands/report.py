"""``tritondiv report DIR``: DIR/report.html with PNG plots of a ladder directory."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "report", help="write DIR/report.html (metrics and coverage against level, token band plot)"
    )
    p.add_argument(
        "dir", metavar="DIR", help="a ladder directory (or a directory of select outputs)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tritondiv._extras import check_extras
    from tritondiv.report import write_report

    check_extras("report", what="tritondiv report")
    print(write_report(args.dir))
    return 0
