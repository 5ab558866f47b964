"""The candidate rows of a strategy and the source strata it selects from.

Every strategy (:mod:`tritondiv.strategies`) first restricts the pool, then splits what is
left into strata; the selection runs on each stratum and the parts are combined.

- ``typeless`` (type strategies): samples that carry no type of the family (no mid-band
  token, no tag, HDBSCAN noise) are **not** candidates under ``"exclude"`` (the default) —
  a dataset "at ``k`` types" is then made of samples of those types only; ``"include"``
  keeps them (they survive every pruning step and are drawn last). The manifest's
  ``typeless`` records the rule, the family's count and how many were excluded.
- ``length_band`` ``"LO:HI"``: every strategy (type and baseline) only sees samples whose
  response has ``LO..HI`` tokens of the micro tokenizer (the paper's length control),
  manifest ``length_band``: the band and how many samples it excluded.

Exclusions restrict the candidate rows **before** pruning: the pruning and the selection
run on ``incidence.subset(rows)`` and their indices are mapped back to pool indices.

- ``stratify="source"``: each dataset keeps the candidates' source mix (``Pool.source``,
  the file of each sample; equal to the pool's when nothing is excluded). Source ``s``
  with ``c_s`` of the ``C`` candidates gets the quota ``q_s`` of :func:`source_quotas`
  (largest remainder: ``floor(n c_s / C)``, plus one for the largest remainders; the quotas
  sum to ``n``). The whole selection (pruning, the same ``k(p)`` rule with ``n = q_s``,
  the sampler or the baseline's pick) then runs on each source's candidates alone, and
  the parts are concatenated in a seeded order of the sources. The manifest's
  ``stratify`` lists each stratum's candidates, quota and ``k``/``k_min``/``k_max``; the
  top-level ``k`` (``k_min``, ``k_max``) counts the distinct types kept over all strata.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from tritondiv.feature_store import Features

__all__ = [
    "Candidates",
    "Combined",
    "Part",
    "Stratum",
    "candidate_rows",
    "check_candidates",
    "check_size",
    "combine_parts",
    "source_quotas",
    "source_strata",
    "stratum_pruning",
]


# ---- candidates and strata -------------------------------------------------------------
@dataclass
class Candidates:
    """The candidate rows of a strategy (``None``: the whole pool) and what was excluded."""

    rows: np.ndarray | None
    typeless: dict[str, Any]
    length_band: dict[str, Any] | None

    @property
    def count(self) -> int | None:
        return None if self.rows is None else int(self.rows.size)


def candidate_rows(features: Features, family: str, type_strategy: bool) -> Candidates:
    """Restrict the pool before pruning: the length band (every strategy), then, for a type
    strategy under ``typeless="exclude"``, the samples with no type of its family."""
    inc = features.incidence(family)
    keep = np.ones(inc.n_samples, dtype=bool)
    has_type = np.asarray(inc.row_lengths()) > 0
    band_info = None
    in_band = features.in_length_band()
    if in_band is not None:
        band = features.length_band()
        assert band is not None
        keep &= in_band
        band_info = {"band": [band[0], band[1]], "excluded": int((~in_band).sum())}
    rule = features.options.typeless if type_strategy else "include"
    excluded = 0
    if rule == "exclude":
        excluded = int((keep & ~has_type).sum())
        keep &= has_type
    rows = None if keep.all() else np.flatnonzero(keep).astype(np.int64)
    typeless = {"rule": rule, "count": int((~has_type).sum()), "excluded": excluded}
    return Candidates(rows, typeless, band_info)


def source_quotas(counts: Sequence[int] | np.ndarray, n: int) -> np.ndarray:
    """Split ``n`` over strata of ``counts`` samples by largest remainder (Hamilton).

    Stratum ``s`` gets ``floor(n c_s / C)`` plus one for the ``n - sum floor`` strata of
    largest remainder ``n c_s mod C`` (ties: the earlier stratum); the quotas sum to ``n``
    and each is within one of ``n c_s / C`` (and at most ``c_s`` when ``n <= C``).
    """
    c = np.asarray(counts, dtype=np.int64)
    total = int(c.sum())
    if total <= 0:
        raise ValueError("source_quotas: the strata hold no samples")
    base = (n * c) // total
    rem = (n * c) % total
    extra = int(n - base.sum())
    order = np.lexsort((np.arange(c.size), -rem))
    base[order[:extra]] += 1
    return base


@dataclass
class Stratum:
    """Rows (ascending pool indices, ``None``: every row) selected from with a quota."""

    source: str | None
    rows: np.ndarray | None
    quota: int

    def to_pool(self, local: np.ndarray) -> np.ndarray:
        idx = np.asarray(local, dtype=np.int64)
        return idx if self.rows is None else self.rows[idx]


def source_strata(features: Features, cand: Candidates, n: int, seed: int) -> list[Stratum]:
    """One stratum (the candidates), or with ``stratify="source"`` one per source of the
    candidates with its largest-remainder quota, in a seeded order."""
    if features.options.stratify is None:
        return [Stratum(None, cand.rows, n)]
    rows = np.arange(features.n_samples, dtype=np.int64) if cand.rows is None else cand.rows
    pool_source = getattr(features.pool, "source", None)
    if pool_source is None:
        raise ValueError(
            "stratify='source' needs the pool's source column (Pool.source, the file of each "
            f"sample); this pool ({type(features.pool).__name__}) has none"
        )
    src = np.asarray([str(pool_source[i]) for i in rows], dtype=object)
    names, inverse = np.unique(src, return_inverse=True)
    quotas = source_quotas(np.bincount(inverse, minlength=names.size), n)
    strata = [
        Stratum(str(name), rows[inverse == i], int(quotas[i]))
        for i, name in enumerate(names)
        if quotas[i] > 0
    ]
    order = np.random.default_rng(seed).permutation(len(strata))
    return [strata[i] for i in order]


@dataclass
class Part:
    """One stratum's dataset at one level."""

    indices: np.ndarray
    k: int
    k_min: int
    k_max: int
    candidates: int
    pruning: Any = None
    info: dict[str, Any] = field(default_factory=dict)


def stratum_pruning(features: Features, family: str, rows: np.ndarray | None, seed: int) -> Any:
    if seed == features.seed:
        return features.pruning(family, rows)
    from tritondiv.select import prune_types

    inc = features.incidence(family)
    return prune_types(inc if rows is None else inc.subset(rows), seed=seed)


def _kept(parts: Sequence[Part], which: str) -> int:
    """Distinct types kept over several strata at their ``k``/``k_min``/``k_max``."""
    kept = [p.pruning.types(getattr(p, which)) for p in parts]
    return int(np.unique(np.concatenate(kept)).size) if kept else 0


class Combined(NamedTuple):
    """One level's dataset over the strata (``stratify``: ``None`` with one stratum)."""

    indices: np.ndarray
    k: int
    k_min: int
    k_max: int
    candidates: int
    stratify: dict[str, Any] | None


def combine_parts(parts: list[Part], strata: list[Stratum]) -> Combined:
    """One level's :class:`Combined` dataset over the strata."""
    if len(parts) == 1 and strata[0].source is None:
        p = parts[0]
        return Combined(p.indices, p.k, p.k_min, p.k_max, p.candidates, None)
    idx = np.concatenate([p.indices for p in parts]).astype(np.int64)
    per = [
        {
            "source": st.source,
            "candidates": int(st.rows.size) if st.rows is not None else 0,
            "quota": st.quota,
            "k": p.k,
            "k_min": p.k_min,
            "k_max": p.k_max,
        }
        for st, p in zip(strata, parts, strict=True)
    ]
    k, k_min, k_max = _kept(parts, "k"), _kept(parts, "k_min"), _kept(parts, "k_max")
    cands = sum(p.candidates for p in parts)
    return Combined(idx, k, k_min, k_max, cands, {"by": "source", "strata": per})


def check_candidates(n: int, cand: Candidates, n_samples: int, what: str) -> None:
    check_size(n, n_samples, what)
    if cand.count is not None and n > cand.count:
        why = []
        if cand.length_band is not None:
            lo, hi = cand.length_band["band"]
            why.append(
                f"the length band {lo}:{'' if hi is None else hi} excludes "
                f"{cand.length_band['excluded']}"
            )
        if cand.typeless["excluded"]:
            why.append(f"typeless=exclude excludes {cand.typeless['excluded']} with no type")
        raise ValueError(
            f"{what}: size {n} is larger than the {cand.count} candidates ({'; '.join(why)}): "
            "pass a smaller --size, a wider --length-band or --typeless include"
        )


def check_size(n: int, n_samples: int, what: str) -> None:
    if n < 1:
        raise ValueError(f"size must be >= 1, got {n}")
    if n > n_samples:
        raise ValueError(
            f"{what}: size {n} is larger than the pool ({n_samples} samples): pass a smaller "
            "--size or a larger pool"
        )
