"""Command-line options built from dataclasses: each option is defined once, as a field.

A field's default is its default, ``metadata["help"]`` its help text and
``metadata["cli"]`` the rest of its :meth:`argparse.ArgumentParser.add_argument` keywords
(plus ``flag`` for a spelling other than ``--<name-with-dashes>`` and ``positional``).
:func:`add_arguments` puts the fields of a dataclass on a parser; :func:`from_args`
builds the dataclass back from the parsed namespace, so its normalization and
validation (:class:`~tritondiv.feature_store.FeatureOptions`) are the API's.

The dataclasses of the commands: :class:`~tritondiv.feature_store.FeatureOptions`
(features, types and selection), :class:`PoolArgs` (what pool to read, mapped 1:1 onto
:func:`tritondiv.pool.load_pool`) and :class:`RunArgs` (seed and metrics of ``select``
and ``ladder``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, TypeVar

__all__ = ["PoolArgs", "RunArgs", "add_arguments", "from_args", "pool_from_args"]

_D = TypeVar("_D")


def _opt(default: Any, help: str, **cli: Any) -> Any:
    return field(default=default, metadata={"help": help, "cli": cli})


def _formats() -> tuple[str, ...]:
    from tritondiv.pool import FORMATS

    return tuple(FORMATS)


@dataclass
class PoolArgs:
    """The pool loading options: ``POOL`` and the keywords of :func:`tritondiv.pool.load_pool`
    (``--instruction-field``/``--response-field``/``--id-field`` are its ``instruction=``,
    ``response=`` and ``id=``)."""

    source: str | None = _opt(
        None,
        "pool file (.jsonl/.json/.parquet, optionally .gz), directory, or save_to_disk "
        "dataset (default: the embedded ShareGPT pool)",
        positional=True,
        nargs="?",
        metavar="POOL",
    )
    format: str = _opt(
        "auto",
        "record format (default: detect per file from its first record)",
        choices=_formats,
    )
    first_turn_only: bool = _opt(
        False,
        "conversations: only the first user turn and the first reply after it",
        action="store_true",
    )
    skip_bad: bool = _opt(
        False,
        "skip bad records (reported with reasons) instead of stopping at the first",
        action="store_true",
    )
    allow_empty: bool = _opt(
        False,
        "accept empty instruction/response fields (single-turn formats) instead of treating "
        "them as bad",
        action="store_true",
    )
    limit: int | None = _opt(None, "use only the first N samples", type=int, metavar="N")
    instruction_field: tuple[str, ...] | None = _opt(
        None,
        "field(s) the instruction is made of instead of the format's; several (repeat the "
        "option or separate with commas) are joined with a newline, empty later ones "
        "skipped, as alpaca's instruction + input",
        action="append",
        metavar="FIELD",
    )
    response_field: str | None = _opt(
        None, "field the response is taken from instead of the format's", metavar="FIELD"
    )
    id_field: str | None = _opt(
        None, "field the sample ids are taken from (default: id)", metavar="FIELD"
    )

    def __post_init__(self) -> None:
        # --instruction-field a,b --instruction-field c -> ("a", "b", "c")
        if self.instruction_field is not None:
            given = self.instruction_field
            items = [given] if isinstance(given, str) else list(given)
            self.instruction_field = tuple(
                f.strip() for item in items for f in str(item).split(",")
            )

    def load(self) -> Any:
        """The pool (``skipped K records: reasons...`` on stderr when records were skipped)."""
        from tritondiv.pool import load_pool, summarize_skipped

        pool = load_pool(
            self.source,
            format=self.format,
            first_turn_only=self.first_turn_only,
            skip_bad=self.skip_bad,
            limit=self.limit,
            allow_empty=self.allow_empty,
            instruction=self.instruction_field,
            response=self.response_field,
            id=self.id_field,
        )
        if pool.skipped:
            print(summarize_skipped(pool.skipped), file=sys.stderr)
        return pool

    def info(self, pool: Any) -> dict[str, Any]:
        """The pool's description for manifests: fingerprint, size and these options."""
        from dataclasses import asdict

        from tritondiv.ladder import pool_meta

        options = asdict(self)
        for name in ("instruction_field", "response_field", "id_field"):
            if options[name] is None:  # recorded only when given (older manifests lack them)
                del options[name]
        return pool_meta(pool, **options)


@dataclass
class RunArgs:
    """Seed and metrics of ``select`` and ``ladder`` (the API's keyword arguments)."""

    seed: int = _opt(0, "seed of every random choice", type=int)
    bleu_sample: int = _opt(1000, "self-BLEU sample size", type=int)
    metrics: bool = _opt(
        True,
        "skip the diversity metrics in the manifests",
        flag="--no-metrics",
        action="store_false",
    )


def add_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    only: Collection[str] | None = None,
) -> None:
    """Add an option per field of the dataclass ``cls`` (only the fields ``only``, in order
    of definition); the default is stated in the help unless the help says it."""
    for f in fields(cls):
        if only is not None and f.name not in only:
            continue
        cli = dict(f.metadata.get("cli", {}))
        help_text = str(f.metadata.get("help", ""))
        default = f.default if f.default is not MISSING else None
        flag = cli.pop("flag", "--" + f.name.replace("_", "-"))
        positional = cli.pop("positional", False)
        if callable(cli.get("choices")):
            cli["choices"] = cli["choices"]()
        if cli.get("action") is None and default is not None and "default" not in help_text:
            help_text += f" (default {default})"
        if positional:
            parser.add_argument(f.name, default=default, help=help_text, **cli)
        else:
            parser.add_argument(flag, dest=f.name, default=default, help=help_text, **cli)


def from_args(
    cls: type[_D], args: argparse.Namespace, *, only: Collection[str] | None = None
) -> _D:
    """The dataclass ``cls`` from the parsed options (of the fields ``only``, as given to
    :func:`add_arguments`); fields absent from ``args`` keep their defaults."""
    values = {
        f.name: getattr(args, f.name)
        for f in fields(cls)  # type: ignore[arg-type]
        if hasattr(args, f.name) and (only is None or f.name in only)
    }
    return cls(**values)


def pool_from_args(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """Load the pool of the :class:`PoolArgs` options: ``(pool, pool_info)``."""
    pool_args = from_args(PoolArgs, args)
    pool = pool_args.load()
    return pool, pool_args.info(pool)
