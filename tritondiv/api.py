"""The high-level entry point: select from in-memory data in one call.

:func:`select_from` (one dataset) and :func:`ladder_from` (one per level, one pruning pass)
run the same path as ``tritondiv select`` / :func:`tritondiv.ladder.select_dataset` —
:func:`tritondiv.strategies.run_strategy` on :class:`~tritondiv.feature_store.Features` —
without writing anything; :meth:`Selected.write` writes the dataset folder and
:meth:`Selected.to_dataset` gives the chosen rows as a ``datasets.Dataset``.

They are also ``tritondiv.select(...)`` and ``tritondiv.ladder(...)``: the submodules
:mod:`tritondiv.select` (the engine) and :mod:`tritondiv.ladder` are callable modules whose
call is :func:`select_from` / :func:`ladder_from` (``from tritondiv.select import
select_types`` is unchanged).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from tritondiv.families import COMPONENTS
from tritondiv.feature_store import FeatureOptions, Features
from tritondiv.pool import Pool, load_pool
from tritondiv.strategies import Selection, parse_levels, run_strategy, strategy_spec

__all__ = ["Selected", "ladder_from", "select_from"]

PROVENANCE_COLUMNS = ("tritondiv_index", "tritondiv_id", "tritondiv_rank")


@dataclass
class Selected:
    """One selected dataset: the pool rows ``indices`` (selection order) and its manifest.

    ``selection`` is the strategy's :class:`~tritondiv.strategies.Selection`; ``data`` the
    input as given (a ``datasets.Dataset`` is subset directly by :meth:`to_dataset`).
    """

    selection: Selection
    pool: Any
    data: Any = None

    @property
    def indices(self) -> np.ndarray:
        return np.asarray(self.selection.indices, dtype=np.int64)

    @property
    def ids(self) -> list[str]:
        return list(self.selection.ids)

    @property
    def manifest(self) -> dict[str, Any]:
        """The manifest :func:`tritondiv.ladder.select_dataset` would write (less ``data``)."""
        from tritondiv.ladder import _manifest

        return _manifest(self.selection)

    def records(self) -> list[dict[str, Any]]:
        """The selected pool records, in selection order."""
        recs = self.pool.records
        return [recs[i] for i in self.indices]

    def write(self, out: str | Path) -> dict[str, Any]:
        """Write ``out/data.jsonl`` + ``out/manifest.json``; returns the manifest as written."""
        from tritondiv.dataset import check_output_dir, dataset_lock, write_dataset

        out = check_output_dir(out)
        with dataset_lock(out):
            return write_dataset(out, self.records(), self.manifest)

    def to_dataset(self) -> Any:
        """The chosen rows as a ``datasets.Dataset``, original columns kept, plus
        ``tritondiv_index`` (pool row), ``tritondiv_id`` and ``tritondiv_rank`` (selection
        order)."""
        import datasets  # type: ignore[import-untyped]

        idx = self.indices
        src = self.data
        if isinstance(src, datasets.Dataset) and len(src) == len(self.pool):
            ds = src.select(idx.tolist())
        else:
            ds = datasets.Dataset.from_list(self.records())
        taken = sorted(set(PROVENANCE_COLUMNS) & set(ds.column_names))
        if taken:
            ds = ds.remove_columns(taken)
        ds = ds.add_column("tritondiv_index", idx.tolist())
        ds = ds.add_column("tritondiv_id", [str(i) for i in self.selection.ids])
        return ds.add_column("tritondiv_rank", list(range(idx.size)))


_LOADER_NAMES = tuple(n for n in inspect.signature(load_pool).parameters if n != "source")
_OPTION_NAMES = tuple(f.name for f in fields(FeatureOptions))


def _split_kwargs(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(loader keywords, FeatureOptions fields)``; an unknown name is a TypeError."""
    loader, options = {}, {}
    for name, value in kwargs.items():
        if name in _OPTION_NAMES:
            options[name] = value
        elif name in _LOADER_NAMES:
            loader[name] = value
        else:
            raise TypeError(
                f"unknown option {name!r}: valid options are {', '.join(_OPTION_NAMES)}; "
                f"pool loading takes {', '.join(_LOADER_NAMES)}"
            )
    return loader, options


def _load(data: Any, loader: dict[str, Any]) -> Any:
    if isinstance(data, Pool):
        if loader:
            raise TypeError(f"data is a Pool already: drop {', '.join(sorted(loader))}")
        return data
    return load_pool(data, **loader)


def _pool_info(pool: Any, data: Any, loader: dict[str, Any]) -> dict[str, Any]:
    from tritondiv.ladder import pool_meta

    # JSON-able loader options only (an instruction made of several fields is a list).
    info = {
        k: (list(v) if isinstance(v, tuple) else v)
        for k, v in loader.items()
        if v is None
        or isinstance(v, (str, int, float))
        or (isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v))
    }
    if isinstance(data, (str, Path)):
        info["path"] = str(data)
    return pool_meta(pool, **info)


def _embedding_arrays(
    embeddings: Any, component: str, options: dict[str, Any], n: int
) -> dict[str, np.ndarray]:
    """Arrays to preset per component; paths go into ``options`` (``embeddings_<c>``)."""
    if embeddings is None:
        return {}
    given = dict(embeddings) if isinstance(embeddings, Mapping) else {component: embeddings}
    arrays: dict[str, np.ndarray] = {}
    for comp, value in given.items():
        if comp not in COMPONENTS:
            raise ValueError(f"embeddings: unknown component {comp!r}, choose from {COMPONENTS}")
        if isinstance(value, (str, Path)):
            options[f"embeddings_{comp}"] = str(value)
            continue
        if not isinstance(value, np.ndarray):
            raise TypeError(
                f"embeddings[{comp!r}]: expected a numpy array or a .npy path, "
                f"got {type(value).__name__}"
            )
        if value.ndim != 2 or not np.issubdtype(value.dtype, np.floating):
            raise ValueError(
                f"embeddings[{comp!r}] must be a 2-D float array [N, d], got shape "
                f"{value.shape} dtype {value.dtype}"
            )
        if value.shape[0] != n:
            raise ValueError(
                f"embeddings[{comp!r}] have {value.shape[0]} rows but the pool has {n} samples"
            )
        out = np.array(value, dtype=np.float32, order="C", copy=True)
        if not np.isfinite(out).all():
            raise ValueError(f"embeddings[{comp!r}] contain NaN or inf")
        norms = np.linalg.norm(out, axis=1)
        nz = norms > 0
        out[nz] /= norms[nz, None]  # as a precomputed .npy file is normalized
        arrays[comp] = out
    return arrays


def _quality(quality: Any, options: dict[str, Any]) -> Any:
    """A path or field name goes into ``options`` (``quality``); an array is returned (set
    on the features, checked there)."""
    if quality is None:
        return None
    if isinstance(quality, (str, Path)):
        options["quality"] = str(quality)
        return None
    if isinstance(quality, (bool, int, float)):
        raise TypeError(
            f"quality: expected one score per pool sample (array), a .npy path or a field "
            f"name, got {type(quality).__name__}"
        )
    return quality


#: The engine keywords of the calls (:class:`~tritondiv.commands._options.EngineArgs`).
ENGINE_KEYWORDS = ("engine", "ray_address", "partitions")


def _engine(kwargs: dict[str, Any]) -> Any:
    """Pop the engine keywords out of ``kwargs``: their :class:`EngineArgs` (validated there,
    the CLI's ``--engine``/``--ray-address``/``--partitions``)."""
    from tritondiv.commands._options import EngineArgs

    return EngineArgs(**{k: kwargs.pop(k) for k in ENGINE_KEYWORDS if k in kwargs})


def _ray_micro_incidences(
    features: Any, family: str, data: Any, loader: dict[str, Any], address: str | None
) -> None:
    """The micro incidence of ``family`` computed on Ray (as ``--engine ray``): the pool's
    file read there when it was loaded from one with the plain loader options, else the
    loaded pool shipped to the cluster."""
    from tritondiv.distributed.engine import LOAD_KEYS, set_micro_incidences

    from_file = isinstance(data, (str, Path)) and set(loader) <= set(LOAD_KEYS)
    set_micro_incidences(
        features,
        [family],
        source=str(data) if from_file else None,
        load=dict(loader) if from_file else None,
        address=address,
    )


def _run(
    data: Any,
    strategy: str,
    levels: Sequence[float],
    size: int,
    seed: int,
    embeddings: Any,
    quality: Any,
    incidences: Mapping[str, Any] | None,
    metrics: bool,
    kwargs: dict[str, Any],
) -> list[Selected]:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise TypeError(f"size must be an int, got {size!r}")
    kwargs = dict(kwargs)
    engine = _engine(kwargs)
    loader, opts = _split_kwargs(kwargs)
    spec = strategy_spec(strategy)
    engine.check([strategy])  # the ray extra, before any work
    pool = _load(data, loader)
    if size < 1 or size > len(pool):
        raise ValueError(f"size must lie in [1, {len(pool)}] (the pool's samples), got {size}")
    tokenizer = opts.get("tokenizer")
    if tokenizer is not None and not isinstance(tokenizer, (str, Path)):
        del opts["tokenizer"]  # a loaded tokenizer object: set on the features below
    else:
        tokenizer = None
    component, family = spec.resolve(FeatureOptions(**opts))
    arrays = _embedding_arrays(embeddings, component, opts, len(pool))
    scores = _quality(quality, opts)
    if engine.on_ray:
        if tokenizer is not None:
            raise ValueError(
                "tokenizer: a loaded tokenizer object is not shipped to Ray; pass its name "
                "or tokenizer.json path, or engine='local'"
            )
        from tritondiv.distributed.engine import RayFeatures

        features: Features = RayFeatures(
            pool,
            FeatureOptions(**opts),
            seed=seed,
            address=engine.ray_address,
            partitions=engine.partitions,
        )
    else:
        features = Features(pool, FeatureOptions(**opts), seed=seed)
    if tokenizer is not None:
        from tritondiv.tokens import load_tokenizer

        features._tokenizer.append(load_tokenizer(tokenizer))  # its identity: the manifest's
    features._embeddings.update(arrays)  # preset arrays, as embed_pool normalizes a .npy
    if scores is not None:
        features.set_quality(scores, "quality")
    for family, incidence in (incidences or {}).items():
        features.set_incidence(family, incidence)  # checked there: family, rows, type
    features.quality()  # a bad path, field or array fails here, before any feature work
    if engine.on_ray:
        _ray_micro_incidences(features, family, data, loader, engine.ray_address)
    sels = run_strategy(strategy, features, int(size), list(levels), seed)
    info = _pool_info(pool, data, loader)
    out = []
    for sel in sels:
        sel.pool = info
        if metrics:
            from tritondiv.ladder import dataset_metrics

            sel.metrics = dataset_metrics(features, sel.indices, seed=seed)
        sel.timings = dict(features.timings)
        out.append(Selected(sel, pool, data))
    return out


def select_from(
    data: Any,
    strategy: str,
    *,
    size: int,
    level: float = 1.0,
    seed: int = 0,
    embeddings: Any = None,
    quality: Any = None,
    incidences: Mapping[str, Any] | None = None,
    metrics: bool = False,
    **options: Any,
) -> Selected:
    """Select ``size`` samples of ``data`` with ``strategy`` at diversity ``level``.

    Parameters
    ----------
    data : path, datasets.Dataset, DataFrame, pyarrow.Table, list of dict, or Pool
        Anything :func:`tritondiv.load_pool` takes.
    strategy : str
        A strategy name (:data:`tritondiv.strategies.STRATEGIES`).
    size : int
        Samples to select.
    level : float
        Diversity level in [0, 1].
    seed : int
        Seed of every random choice.
    embeddings : array, path, or dict of them per component, optional
        Precomputed embeddings (one row per pool sample); one array or path is for the
        strategy's component.
    quality : array, path or str, optional
        Per-sample quality scores (one finite float per pool sample, pool order): an array,
        a ``.npy`` path, or the name of a numeric field of the records. ``deita`` needs
        them (its walk order); ``facility-location`` and the type strategies (sampler
        greedy) weight their gains by them (then ``>= 0``); other strategies refuse them.
        The manifest records their sha256, not the scores.
    incidences : dict, optional
        Your own types: family name (``"response-meso"``, ``"instruction-macro"``, ...) ->
        a :class:`~tritondiv.Incidence` or a scipy.sparse matrix (rows = pool samples,
        columns = types); used instead of computing that family.
    metrics : bool
        Compute the diversity metrics into the manifest (slow: embeds both components).
    **options
        :func:`tritondiv.load_pool` keywords (``instruction``, ``response``, ``id``,
        ``split``, ``format``, ...) and :class:`~tritondiv.feature_store.FeatureOptions`
        fields (``tokenizer``, ``graph``, ``lo``, ``hi``, ...), and the engine keywords
        ``engine="local"|"ray"``, ``ray_address``, ``partitions`` (as ``--engine``,
        ``--ray-address``, ``--partitions``: on Ray the micro incidences, embeddings,
        keyphrase tags and the kcenter/facility-location picks run on the cluster, with the
        same results as locally for all but those two, which run as two-round partitioned
        greedy); other names are a TypeError.
        ``tokenizer`` may also be a loaded tokenizer (``tokenizers.Tokenizer``, a fast
        ``transformers`` tokenizer; :func:`tritondiv.load_tokenizer`); the manifest records
        its identity (:func:`tritondiv.tokenizer_identity`).
    """
    if isinstance(level, bool) or not isinstance(level, (int, float, np.number)):
        raise TypeError(f"level must be a float, got {level!r}")
    if not 0.0 <= float(level) <= 1.0:
        raise ValueError(f"level must lie in [0, 1], got {level}")
    (sel,) = _run(
        data,
        strategy,
        [float(level)],
        size,
        seed,
        embeddings,
        quality,
        incidences,
        metrics,
        options,
    )
    return sel


def ladder_from(
    data: Any,
    strategy: str,
    *,
    size: int,
    levels: int | str | Sequence[float] = 7,
    seed: int = 0,
    embeddings: Any = None,
    quality: Any = None,
    incidences: Mapping[str, Any] | None = None,
    metrics: bool = False,
    **options: Any,
) -> list[Selected]:
    """One :class:`Selected` per level (``7`` -> ``0, 1/6, ..., 1``), sharing one pruning
    pass; the other arguments as :func:`select_from`."""
    values = parse_levels(levels)
    out = _run(
        data, strategy, values, size, seed, embeddings, quality, incidences, metrics, options
    )
    for i, s in enumerate(out):
        s.selection.level_index = i
    return out
