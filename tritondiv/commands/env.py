"""``tritondiv env``: versions, OpenMP state and threads, Triton/CUDA usability."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("env", help="print versions, OpenMP state and threads, Triton/CUDA state")
    p.add_argument(
        "--json",
        nargs="?",
        const="-",
        default=None,
        metavar="OUT",
        help="print JSON instead of a table (--json or --json -: to stdout; --json OUT: to OUT)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tritondiv._io import write_json_output
    from tritondiv._runtime import env_info

    info = env_info()
    if args.json is not None:
        where = write_json_output(args.json, info)
        if where != "stdout":
            print(f"wrote {where}")
        return 0
    width = max(len(k) for k in info)
    for key, value in info.items():
        print(f"{key:<{width}}  {'-' if value is None else value}")
    return 0
