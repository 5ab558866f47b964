"""The ``tritondiv`` command line. Each subcommand lives in ``tritondiv/commands/<name>.py``
and exposes ``register(subparsers)``; this module only assembles them."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# Subcommand modules, in the order `tritondiv --help` lists them.
COMMANDS: tuple[str, ...] = (
    "env",
    "stats",
    "select",
    "ladder",
    "metrics",
    "report",
    "sft",
    "experiment",
    "run",
    "replay",
)


class CliError(Exception):
    """An error the CLI reports as one line on stderr with exit code 2 (no traceback)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tritondiv",
        description="Build SFT datasets with controlled macro/meso/micro diversity, fast.",
    )
    parser.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="threads of the C++ core (default: all cores; `tritondiv env` shows the setting)",
    )
    talk = parser.add_mutually_exclusive_group()
    talk.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="also debug messages on stderr (-vv: other libraries' too)",
    )
    talk.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="only warnings and errors on stderr, and no progress bars",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"tritondiv.commands.{name}").register(sub)
    return parser


def _set_threads(n: int) -> None:
    if n < 1:
        raise CliError(f"--threads {n}: pass a thread count >= 1")
    from tritondiv._runtime import set_num_threads

    try:
        set_num_threads(n)
    except ValueError as exc:
        raise CliError(f"--threads {n}: {exc}") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; user errors are one line on stderr with exit code 2.

    User errors are :class:`CliError`, ``ValueError`` (``PoolError`` is one) and
    ``FileNotFoundError``, and a missing extra (:class:`~tritondiv._extras.MissingExtraError`,
    raised before the work starts): their messages name the file, line, field or option and what to
    do. Anything else (``TypeError`` included) is a bug and shows its traceback.
    """
    from tritondiv._extras import MissingExtraError
    from tritondiv._log import progress_enabled, set_progress_bars, set_quiet, setup, teardown

    parser = build_parser()
    args = parser.parse_args(argv)
    bars_before = progress_enabled(True)
    setup(args.verbose, args.quiet, prefix=f"tritondiv {args.command}")
    logging.getLogger(__name__).debug("argv: %s", " ".join(sys.argv[1:] if argv is None else argv))
    try:
        if args.threads is not None:
            _set_threads(args.threads)
        return int(args.func(args) or 0)
    except (CliError, ValueError, FileNotFoundError, MissingExtraError) as exc:
        print(f"tritondiv {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"tritondiv {args.command}: interrupted; finished outputs are intact", file=sys.stderr
        )
        return 130
    finally:
        set_progress_bars(bars_before)  # -q lasts for this command only
        set_quiet(False)
        teardown()  # the logging configuration too


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
