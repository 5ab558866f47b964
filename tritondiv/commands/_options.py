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
import logging
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


def _output_formats() -> tuple[str, ...]:
    from tritondiv.dataset import OUTPUT_FORMATS

    return OUTPUT_FORMATS


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

    def load(self, cache: bool = True) -> Any:
        """The pool (``skipped K records: reasons...`` logged as a warning when records were
        skipped); ``cache=False`` (``--no-cache``) neither reads nor writes the pool cache."""
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
            cache=cache,
        )
        if pool.skipped:
            logging.getLogger(__name__).warning("%s", summarize_skipped(pool.skipped))
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
    """Seed, metrics and output format of ``select`` and ``ladder`` (the API's keyword
    arguments)."""

    seed: int = _opt(0, "seed of every random choice", type=int)
    bleu_sample: int = _opt(1000, "self-BLEU sample size", type=int)
    metrics: bool = _opt(
        True,
        "skip the diversity metrics in the manifests",
        flag="--no-metrics",
        action="store_false",
    )
    output_format: str = _opt(
        "jsonl",
        "data file format: jsonl (the original records, default), parquet (the same as "
        "table rows), messages (TRL conversational) or prompt-completion (TRL standard)",
        choices=_output_formats,
    )

    def __post_init__(self) -> None:
        from tritondiv.dataset import check_output_format

        check_output_format(self.output_format)


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
    pool = pool_args.load(cache=getattr(args, "cache", True))
    return pool, pool_args.info(pool)


ENGINES = ("local", "ray")


@dataclass
class EngineArgs:
    """Where the token work runs: this process (``local``) or a Ray cluster (``ray``).

    On Ray, ``stats`` tokenizes and counts on the cluster; ``select``/``ladder`` compute
    the micro incidences there (the type selection runs here, on the driver) and run
    ``kcenter``/``facility-location`` as two-round partitioned greedy over ``partitions``
    parts on the cluster; see :mod:`tritondiv.distributed.engine`.
    """

    engine: str = _opt(
        "local",
        "where tokenization, token counts, micro incidences, embeddings, keyphrase tags and "
        "the kcenter/facility-location picks run: local (this process) or ray (a Ray "
        "cluster; the type selection stays here)",
        choices=ENGINES,
    )
    ray_address: str | None = _opt(
        None,
        "Ray cluster to join, e.g. auto or ray://HOST:10001 (default: the running session, "
        "else a new local one)",
        metavar="ADDR",
    )
    partitions: int | None = _opt(
        None,
        "partitions of the two-round distributed kcenter (composable k-center) and "
        "facility-location (GreeDi) on Ray (default: the Ray cluster's CPUs)",
        type=int,
        metavar="N",
    )

    def __post_init__(self) -> None:
        if not isinstance(self.engine, str):
            raise TypeError(f"engine must be a str, got {type(self.engine).__name__}")
        if self.engine not in ENGINES:
            raise ValueError(f"engine (--engine) must be one of {ENGINES}, got {self.engine!r}")
        if self.ray_address is not None and not isinstance(self.ray_address, str):
            raise TypeError(
                f"ray_address must be a str or None, got {type(self.ray_address).__name__}"
            )
        if self.ray_address is not None and not self.ray_address.strip():
            raise ValueError("ray_address (--ray-address) is empty: pass an address or omit it")
        if self.partitions is not None:
            if isinstance(self.partitions, bool) or not isinstance(self.partitions, int):
                raise TypeError(
                    f"partitions must be an int or None, got {type(self.partitions).__name__}"
                )
            if self.partitions < 1:
                raise ValueError(f"partitions (--partitions) must be >= 1, got {self.partitions}")
        if self.engine == "local":
            given = [
                flag
                for flag, value in (
                    ("--ray-address", self.ray_address),
                    ("--partitions", self.partitions),
                )
                if value is not None
            ]
            if given:
                verb = "needs" if len(given) == 1 else "need"
                raise ValueError(f"{' and '.join(given)} {verb} --engine ray")

    @property
    def on_ray(self) -> bool:
        return self.engine == "ray"

    def check(self, strategies: Collection[str]) -> None:
        """On Ray, before any work: the ``ray`` extra is installed
        (:class:`~tritondiv._extras.MissingExtraError` otherwise), and ``ValueError`` for a
        strategy that is not on Ray yet."""
        if self.on_ray:
            from tritondiv._extras import check_extras
            from tritondiv.distributed.engine import check_strategies

            check_extras("ray", what="--engine ray")
            check_strategies(strategies)

    def features(
        self, pool: Any, pool_args: PoolArgs, options: Any, seed: int, strategies: Collection[str]
    ) -> Any:
        """``None`` locally (the API builds its features); on Ray, the
        :class:`~tritondiv.distributed.engine.RayFeatures` of ``pool`` with the micro
        incidences of ``strategies`` computed on the cluster (from the POOL files read with
        ``pool_args``) and the distributed embedding baselines."""
        if not self.on_ray:
            return None
        from dataclasses import asdict

        from tritondiv.distributed.engine import RayFeatures, set_micro_incidences
        from tritondiv.strategies import strategy_spec

        self.check(strategies)
        families = {strategy_spec(s).resolve(options)[1] for s in strategies}
        features = RayFeatures(
            pool, options, seed=seed, address=self.ray_address, partitions=self.partitions
        )
        load = asdict(pool_args)
        source = load.pop("source")
        set_micro_incidences(features, families, source=source, load=load, address=self.ray_address)
        return features


__all__ += ["ENGINES", "EngineArgs"]
