"""``tritondiv env``: versions, OpenMP state and threads, Triton/CUDA usability."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("env", help="print versions, OpenMP state and threads, Triton/CUDA state")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tritondiv._runtime import env_info

    info = env_info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    width = max(len(k) for k in info)
    for key, value in info.items():
        print(f"{key:<{width}}  {'-' if value is None else value}")
    return 0
