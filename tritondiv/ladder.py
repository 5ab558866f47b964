"""Datasets at several diversity levels per strategy — ``tritondiv select`` and ``ladder``.

Ladder layout (read by ``tritondiv experiment``; keep it stable)::

    DIR/ladder.json                      index: pool, size, levels, strategies, seed,
                                         options, datasets [{strategy, level,
                                         level_index, path}], timings
    DIR/<strategy>/level-<i>/data.jsonl  the selected records, in selection order (or
                                         the data file of another output format)
    DIR/<strategy>/level-<i>/manifest.json
    DIR/token_counts.npz                 pool token frequencies per component (band plot)
    DIR/report.html, DIR/*.png           the report (tritondiv.report)

Features (embeddings, tokens, tags), type incidences, the pruning pass and the kNN graph
are computed once per run and shared by every strategy and level. A level whose
manifest verifies (sha256 of ``data.jsonl`` matches; same strategy, level, size, seed and
pool fingerprint) is skipped on a rerun; a partial one is redone. The index records the
output format; a rerun with another one is refused (pass the same one, another folder, or
delete the ladder).

Stages are logged at INFO on the ``tritondiv.ladder`` logger (name and counts); the bar
(one step per dataset) is drawn only on a terminal and never after ``tritondiv -q``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tritondiv._io import save_npz_atomic, write_json_atomic
from tritondiv.dataset import (
    LADDER_FILE,
    check_output_dir,
    check_output_format,
    dataset_lock,
    jsonable,
    level_dir,
    output_format_of,
    read_manifest,
    verify_dataset,
    versions,
    write_dataset,
)
from tritondiv.families import COMPONENTS, coverage
from tritondiv.feature_store import FeatureOptions, Features
from tritondiv.strategies import (
    Selection,
    parse_levels,
    parse_strategies,
    run_strategy,
    strategy_spec,
)

__all__ = [
    "LADDER_FILE",
    "TOKEN_COUNTS_FILE",
    "dataset_metrics",
    "level_dir",
    "pool_fingerprint",
    "pool_meta",
    "run_ladder",
    "select_dataset",
]

TOKEN_COUNTS_FILE = "token_counts.npz"

_log = logging.getLogger(__name__)


def pool_fingerprint(pool: Any) -> str:
    fp = pool.fingerprint
    return str(fp() if callable(fp) else fp)


def pool_meta(pool: Any, **loader_options: Any) -> dict[str, Any]:
    """Pool description for manifests: fingerprint, size, and how it was loaded."""
    return jsonable(
        {
            "fingerprint": pool_fingerprint(pool),
            "n_samples": len(pool),
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in loader_options.items()},
        }
    )


def _selection_options(options: dict[str, Any]) -> dict[str, Any]:
    """The options that change what is selected (not progress bars or the cache switch)."""
    return {k: v for k, v in options.items() if k not in ("progress", "cache")}


def _normalized_options(recorded: dict[str, Any]) -> dict[str, Any]:
    """Recorded options as :class:`FeatureOptions` normalizes them (a ladder written by an
    older CLI recorded ``lo="10"``); as recorded when they no longer parse."""
    try:
        return jsonable(FeatureOptions.from_dict(recorded).to_dict())
    except (TypeError, ValueError):
        return recorded


def _component_inputs(
    features: Features, component: str, idx: np.ndarray
) -> tuple[list[str], Any, Any]:
    texts_all = features.pool.component(component)
    texts = [str(texts_all[i]) for i in idx]
    from tritondiv.metrics import subset_tokens

    if features.has_tokens(component):
        tokens = subset_tokens(features.tokens(component), idx)
    else:
        from tritondiv.tokens import tokenize

        tokens = tokenize(texts, features.tokenizer(), progress=False)
    pre = getattr(features.options, f"embeddings_{component}")
    if features.has_embeddings(component) or pre is not None:
        emb = features.embeddings(component)[idx]
    else:
        from tritondiv.features import embed_texts

        emb = embed_texts(texts, features.options.embedding_model, progress=False)
    return texts, tokens, emb


def dataset_metrics(
    features: Features,
    indices: np.ndarray,
    *,
    seed: int = 0,
    bleu_sample: int | None = 1000,
    families: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Metrics of the pool rows ``indices``: per component, plus coverage per type family.

    ``families`` (default: every incidence already computed) get a coverage entry
    ``{covered, n_types, fraction}``.
    """
    from tritondiv.metrics import component_metrics

    idx = np.asarray(indices, dtype=np.int64)
    out: dict[str, Any] = {}
    for component in COMPONENTS:
        texts, tokens, emb = _component_inputs(features, component, idx)
        out[component] = component_metrics(texts, tokens, emb, bleu_sample=bleu_sample, seed=seed)
    fams = features.computed_families() if families is None else families
    cov = {}
    for fam in fams:
        inc = features.incidence(fam)
        c = coverage(inc, idx)
        cov[fam] = {
            "covered": c,
            "n_types": inc.n_types,
            "fraction": c / inc.n_types if inc.n_types else 0.0,
        }
    out["coverage"] = cov
    return out


def _manifest(sel: Selection) -> dict[str, Any]:
    """The manifest of a dataset: its :class:`Selection`'s fields, the folder that its
    relative paths (pool, embeddings) are relative to (``tritondiv replay`` reads it), and
    the versions."""
    return {**sel.manifest_fields(), "workdir": os.getcwd(), "versions": versions()}


def _features_for(
    pool: Any, options: FeatureOptions | None, features: Features | None, seed: int
) -> Features:
    """The features of a run: ``features`` (whose options and seed must agree) or new ones."""
    if features is None:
        return Features(pool, options or FeatureOptions(), seed=seed)
    if options is not None and options != features.options:
        raise ValueError("options differ from features.options: pass one of them")
    if features.seed != seed:
        raise ValueError(f"seed={seed} differs from features.seed={features.seed}")
    return features


def select_dataset(
    pool: Any,
    strategy: str,
    level: float,
    size: int,
    out: str | Path,
    *,
    options: FeatureOptions | None = None,
    seed: int = 0,
    pool_info: dict[str, Any] | None = None,
    metrics: bool = True,
    bleu_sample: int | None = 1000,
    features: Features | None = None,
    output_format: str = "jsonl",
) -> dict[str, Any]:
    """Select one dataset and write ``out/data.jsonl`` + ``out/manifest.json``.

    ``output_format`` (:data:`tritondiv.dataset.OUTPUT_FORMATS`) picks the data file:
    ``jsonl`` (default), ``parquet``, ``messages`` or ``prompt-completion``.

    Returns
    -------
    dict
        The manifest as written.
    """
    out = check_output_dir(out)
    check_output_format(output_format)
    if not 0.0 <= float(level) <= 1.0:
        raise ValueError(f"level must lie in [0, 1], got {level}")
    strategy_spec(strategy)
    features = _features_for(pool, options, features, seed)
    bar = _StageBar(1, features.progress)
    features.on_stage = bar.feature_stage(features)
    try:
        label = _strategy_label(strategy, features.options)
        bar.stage(f"select {label} level {float(level):g}")
        (sel,) = run_strategy(strategy, features, size, [float(level)], seed)
        sel.pool = pool_info or pool_meta(pool)
        if metrics:
            bar.stage(f"metrics {label}", f"{len(sel.indices):,} samples")
            sel.metrics = dataset_metrics(features, sel.indices, seed=seed, bleu_sample=bleu_sample)
        sel.timings = dict(features.timings)
        bar.stage(f"write {label} ({len(sel.indices):,} samples, {output_format})")
        with dataset_lock(out):
            man = write_dataset(
                out, pool.subset(sel.indices), _manifest(sel), output_format=output_format
            )
        bar.advance()
        return man
    finally:
        features.on_stage = None
        bar.close()


def _strategy_label(name: str, options: FeatureOptions) -> str:
    """A strategy as the bar names it: a type family as it is (``response-micro``), a
    baseline with the component it runs on (``kcenter on response``)."""
    component, family = strategy_spec(name).resolve(options)
    return name if name == family else f"{name} on {component}"


class _StageBar:
    """The ladder's bar: one step per dataset, its description the stage running now
    (``"embed response"``, ``"select response-micro (7 of 7 levels)"``,
    ``"metrics response-micro level 3/7"``); no bar when ``enabled`` is false. Every stage
    is also logged at INFO, with the datasets done so far."""

    def __init__(self, total: int, enabled: bool) -> None:
        self._bar: Any = None
        self._total = total
        self._done = 0
        if enabled and total > 0:
            from tqdm.auto import tqdm  # type: ignore[import-untyped]

            self._bar = tqdm(total=total, desc="ladder", unit="dataset", leave=False)

    def stage(self, text: str, detail: str = "") -> None:
        if self._total > 1:
            detail = f"{detail}, " if detail else ""
            detail += f"{self._done}/{self._total} datasets done"
        _log.info("%s%s", text, f" ({detail})" if detail else "")
        if self._bar is not None:
            self._bar.set_description_str(text)

    def feature_stage(self, features: Features) -> Callable[[str], None]:
        """The ``on_stage`` of ``features``: the stage, logged with the pool's size."""
        return lambda text: self.stage(
            text, "" if text == "load tokenizer" else f"{features.n_samples:,} samples"
        )

    def advance(self) -> None:
        self._done += 1
        if self._bar is not None:
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _save_token_counts(features: Features, out: Path) -> None:
    from tritondiv.stats import token_counts

    arrays: dict[str, np.ndarray] = {}
    lo, hi = features.band("response")
    for component in COMPONENTS:
        tc = token_counts(features.tokens(component))
        arrays[f"counts_{component}"] = np.asarray(tc.counts, dtype=np.int64)
        arrays[f"doc_freq_{component}"] = np.asarray(tc.df, dtype=np.int64)
    arrays["band"] = np.array([lo, hi], dtype=np.int64)
    save_npz_atomic(out / TOKEN_COUNTS_FILE, **arrays)


def run_ladder(
    pool: Any,
    size: int,
    out: str | Path,
    *,
    levels: int | str | Sequence[float] = 7,
    strategies: str | Sequence[str] = "all",
    options: FeatureOptions | None = None,
    seed: int = 0,
    pool_info: dict[str, Any] | None = None,
    metrics: bool = True,
    bleu_sample: int | None = 1000,
    report: bool = True,
    features: Features | None = None,
    log: Callable[[str], None] | None = None,
    output_format: str = "jsonl",
) -> dict[str, Any]:
    """Build every (strategy, level) dataset of a ladder under ``out``; resumable.

    Parameters
    ----------
    pool : Pool
        The pool.
    size : int
        Samples per dataset.
    out : path
        The ladder directory.
    levels : int, str or sequence of float
        A count (``7`` → ``0, 1/6, …, 1``) or the levels themselves.
    strategies : str or sequence of str
        ``all`` (the six type strategies), ``everything``, or names.
    options : FeatureOptions
        Feature and selection options.
    seed : int
        Seed of every random choice.
    pool_info : dict, optional
        Pool description for the manifests (default :func:`pool_meta`).
    metrics : bool
        Compute the diversity metrics of every dataset.
    bleu_sample : int or None
        Self-BLEU sample size.
    report : bool
        Write ``report.html`` at the end.
    features : Features, optional
        Precomputed features to reuse.
    log : callable, optional
        Receives one line per finished or skipped dataset (default: the
        ``tritondiv.ladder`` logger at INFO).
    output_format : str
        The data file of every dataset (:data:`tritondiv.dataset.OUTPUT_FORMATS`); a
        ladder resumed with another one is refused (``ValueError``).

    Returns
    -------
    dict
        The ladder index (``ladder.json``).
    """
    out = check_output_dir(out, ladder=True)
    check_output_format(output_format)
    level_values = parse_levels(levels)
    names = parse_strategies(strategies)
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if size > len(pool):
        raise ValueError(
            f"size {size} is larger than the pool ({len(pool)} samples): pass a smaller --size"
        )
    features = _features_for(pool, options, features, seed)
    info = pool_info or pool_meta(pool)
    with dataset_lock(out):
        return _run_ladder(
            pool, size, out, level_values, names, features, seed, info, metrics, bleu_sample,
            report, log, output_format,
        )  # fmt: skip


def _run_ladder(
    pool: Any,
    size: int,
    out: Path,
    level_values: list[float],
    names: list[str],
    features: Features,
    seed: int,
    info: dict[str, Any],
    metrics: bool,
    bleu_sample: int | None,
    report: bool,
    log: Callable[[str], None] | None,
    output_format: str = "jsonl",
) -> dict[str, Any]:
    options = features.options
    fingerprint = info["fingerprint"]
    index_path = out / LADDER_FILE
    if index_path.is_file():
        old = read_manifest(index_path)
        old_fp = (old.get("pool") or {}).get("fingerprint")
        if old_fp != fingerprint or old.get("size") != size or old.get("seed") != seed:
            raise ValueError(
                f"{index_path} belongs to another ladder (pool {old_fp}, size {old.get('size')}, "
                f"seed {old.get('seed')}); pass another --out or delete {out}"
            )
        old_opts = _selection_options(_normalized_options(old.get("options") or {}))
        new_opts = _selection_options(jsonable(options.to_dict()))
        changed = sorted(
            k for k in set(old_opts) | set(new_opts) if old_opts.get(k) != new_opts.get(k)
        )
        if changed:
            diff = ", ".join(f"{k}: {old_opts.get(k)!r} -> {new_opts.get(k)!r}" for k in changed)
            raise ValueError(
                f"{index_path} belongs to another ladder (options differ: {diff}); pass another "
                f"--out, the same options, or delete {out}"
            )
        old_format = old.get("output_format", "jsonl")  # older ladders: jsonl only
        if old_format != output_format:
            raise ValueError(
                f"{index_path} holds a ladder written with --output-format {old_format}, not "
                f"{output_format}: rerun with --output-format {old_format}, pass another --out, "
                f"or delete {out}"
            )
    say = log or _log.info
    t_start = time.perf_counter()
    index: dict[str, Any] = {
        "ladder_version": 1,
        "pool": info,
        "size": int(size),
        "levels": level_values,
        "strategies": names,
        "seed": int(seed),
        "options": options.to_dict(),
        "output_format": output_format,
        "datasets": [
            {"strategy": s, "level": p, "level_index": i, "path": level_dir(s, i)}
            for s in names
            for i, p in enumerate(level_values)
        ],
        "status": "running",
        "versions": versions(),
    }
    write_json_atomic(index_path, jsonable(index))
    timings: dict[str, float] = {}

    def add_time(stage: str, t0: float) -> None:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - t0

    todo: dict[str, list[int]] = {}
    for s in names:
        expect = {"strategy": s, "size": int(size), "seed": int(seed)}
        missing = []
        for i, p in enumerate(level_values):
            ok, _why = verify_dataset(
                out / level_dir(s, i), {**expect, "level": p, "level_index": i}
            )
            if ok:
                man = read_manifest(out / level_dir(s, i))
                ok = (man.get("pool") or {}).get("fingerprint") == fingerprint and (
                    output_format_of(man, "") == output_format
                )
            if ok:
                say(f"{level_dir(s, i)}: finished earlier, skipped")
            else:
                missing.append(i)
        if missing:
            todo[s] = missing
    n_todo = sum(len(m) for m in todo.values())
    bar = _StageBar(n_todo, features.progress)
    features.on_stage = bar.feature_stage(features)
    try:
        if todo:
            # Every family of the ladder's strategies, computed up front (also on a resumed
            # run) so that every manifest gets the same coverage columns.
            families = {strategy_spec(s).resolve(options)[1] for s in names}
            for fam in sorted(families):
                features.incidence(fam)
            if metrics:
                for component in COMPONENTS:
                    features.tokens(component)
                    features.embeddings(component)
            bar.stage("token counts", f"{features.n_samples:,} samples")
            t0 = time.perf_counter()
            _save_token_counts(features, out)
            add_time("token-counts", t0)
        n_levels = len(level_values)
        for s, missing in todo.items():
            label = _strategy_label(s, features.options)
            bar.stage(f"select {label} ({len(missing)} of {n_levels} levels)")
            sels = run_strategy(s, features, size, [level_values[i] for i in missing], seed)
            for i, sel in zip(missing, sels, strict=True):
                where = f"{label} level {i + 1}/{n_levels}"
                t0 = time.perf_counter()
                met = None
                if metrics:
                    bar.stage(f"metrics {where}")
                    met = dataset_metrics(features, sel.indices, seed=seed, bleu_sample=bleu_sample)
                add_time("metrics", t0)
                bar.stage(f"write {where}", f"{len(sel.indices):,} samples, {output_format}")
                t0 = time.perf_counter()
                sel.level_index, sel.pool, sel.metrics = i, info, met
                write_dataset(
                    out / level_dir(s, i),
                    pool.subset(sel.indices),
                    _manifest(sel),
                    output_format=output_format,
                )
                add_time("write", t0)
                bar.advance()
                say(f"{level_dir(s, i)}: k={sel.k} coverage={sel.coverage}/{sel.n_types}")
    finally:
        features.on_stage = None
        bar.close()
    all_timings = {**features.timings, **timings}
    index["status"] = "finished"
    index["timings"] = {k: round(v, 4) for k, v in all_timings.items()}
    index["seconds"] = round(time.perf_counter() - t_start, 3)
    write_json_atomic(index_path, jsonable(index))
    if report:
        from tritondiv.report import write_report

        t0 = time.perf_counter()
        write_report(out)
        add_time("report", t0)
        index["timings"]["report"] = round(timings["report"], 4)
        write_json_atomic(index_path, jsonable(index))
    return index


# ---- ``tritondiv.ladder(...)``: this module is also the high-level call ------------------
import sys as _sys  # noqa: E402
import types as _types  # noqa: E402
from typing import TYPE_CHECKING as _TYPE_CHECKING  # noqa: E402

if _TYPE_CHECKING:  # pragma: no cover
    from tritondiv.api import Selected


class CallableLadder(_types.ModuleType):
    """The type of :mod:`tritondiv.ladder`: the ladder's module, callable as
    :func:`tritondiv.api.ladder_from` (``tritondiv.ladder(data, strategy, size=...)``)."""

    def __call__(
        self,
        data: Any,
        strategy: str,
        *,
        size: int,
        levels: int | str | Sequence[float] = 7,
        seed: int = 0,
        embeddings: Any = None,
        quality: Any = None,
        incidences: Any = None,
        metrics: bool = False,
        **options: Any,
    ) -> list[Selected]:
        """:func:`tritondiv.api.ladder_from`: one selection per level, one pruning pass."""
        from tritondiv.api import ladder_from

        return ladder_from(
            data,
            strategy,
            size=size,
            levels=levels,
            seed=seed,
            embeddings=embeddings,
            quality=quality,
            incidences=incidences,
            metrics=metrics,
            **options,
        )


_sys.modules[__name__].__class__ = CallableLadder
