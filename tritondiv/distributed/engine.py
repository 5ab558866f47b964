"""The commands' Ray engine (``--engine ray``): token work on the cluster, selection here.

* :func:`pool_token_stats` — the token statistics of one component of a loaded pool, on
  Ray: the pool's files are read and tokenized on the cluster when they can be (the
  same loader options), else the in-memory pool is shipped (the embedded default pool,
  or a ``limit``-ed one, whose first rows only are used).
* :func:`set_micro_incidences` — the micro incidences of some type families computed on
  Ray and handed to :meth:`tritondiv.feature_store.Features.set_incidence`, so that the
  type strategies then select on the driver exactly as the local engine does.
* :class:`RayFeatures` — the :class:`~tritondiv.feature_store.Features` of ``--engine ray``:
  the embedding baselines ``kcenter`` and ``facility-location`` pick by two-round
  partitioned greedy on the cluster (composable k-center, GreeDi;
  :mod:`tritondiv.distributed.selection`), seeded, over ``partitions`` parts (default: the
  cluster's CPUs); each manifest records ``engine`` (engine, partitions, the radius or the
  objective and, when the candidates are few enough, the single-machine value and ratio).
* embeddings (macro strategies, baselines, metrics) and keyphrase tags (meso) on Ray Data:
  :meth:`RayFeatures.embeddings`, :meth:`RayFeatures.tags`
  (:mod:`tritondiv.distributed.features`).
* :func:`check_strategies` — refuses the strategies that have no Ray path (none now).

Every result equals the local engine's bit for bit (see
:func:`~tritondiv.distributed.token_stats_ray`), so a dataset selected with ``--engine ray``
is the one ``--engine local`` writes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import numpy as np

from tritondiv.distributed.token_stats import RayTokenStats, token_stats_ray
from tritondiv.feature_store import FeatureOptions, Features

__all__ = [
    "NOT_ON_RAY",
    "REFERENCE_MAX_ROWS",
    "RayFeatures",
    "check_strategies",
    "cluster_cpus",
    "pool_token_stats",
    "set_micro_incidences",
]

#: Strategies the commands do not run with ``--engine ray`` yet.
NOT_ON_RAY: tuple[str, ...] = ()

#: Candidate pools up to this many rows also get the single-machine value (for the ratio).
REFERENCE_MAX_ROWS = 20_000

#: Loader options the cluster applies itself when it reads the pool files.
LOAD_KEYS = ("format", "first_turn_only", "skip_bad", "allow_empty")


def check_strategies(names: Iterable[str]) -> None:
    """``ValueError`` naming the strategies of ``names`` that are not on Ray yet."""
    refused = [n for n in names if n in NOT_ON_RAY]
    if refused:
        raise ValueError(
            f"strategy {', '.join(refused)}: not on Ray yet (only the incidences of the micro "
            "strategies are computed there); run it with --engine local"
        )


_MAPPING_KEYS = ("instruction_field", "response_field", "id_field")


def pool_token_stats(
    pool: Any,
    component: str,
    *,
    source: Any = None,
    load: dict[str, Any] | None = None,
    tokenizer: Any = None,
    lo: Any = 10,
    hi: Any = 500,
    address: str | None = None,
) -> RayTokenStats:
    """Token statistics of ``pool``'s ``component`` computed on Ray.

    Parameters
    ----------
    pool : Pool
        The pool as loaded here (its size is checked against the cluster's count).
    component : {"instruction", "response"}
    source : path or sequence of paths, optional
        Where ``pool`` was read from, with the loader options ``load`` (``format``,
        ``first_turn_only``, ``skip_bad``, ``allow_empty``; ``limit`` or a field mapping
        set means the pool is shipped instead). ``None``: the in-memory pool is shipped to the cluster.
    tokenizer, lo, hi
        As in :func:`~tritondiv.distributed.token_stats_ray`.
    address : str, optional
        Ray cluster to join (default: the running session, else a new local one).
    """
    load = dict(load or {})
    limit = load.pop("limit", None)
    # A field mapping is applied where the pool was loaded: the loaded pool is shipped.
    mapped = any(load.pop(k, None) is not None for k in _MAPPING_KEYS)
    kwargs = {k: load[k] for k in LOAD_KEYS if k in load}
    unknown = sorted(set(load) - set(LOAD_KEYS))
    if unknown:
        raise ValueError(f"load: unknown loader options {unknown}; expected {LOAD_KEYS}")
    if source is None or limit is not None or mapped:
        res = token_stats_ray(pool, component, tokenizer, lo=lo, hi=hi, address=address)
    else:
        res = token_stats_ray(source, component, tokenizer, lo=lo, hi=hi, address=address, **kwargs)
    if res.n_samples != len(pool):
        raise ValueError(
            f"{source}: the cluster read {res.n_samples} samples, this process {len(pool)}; "
            "are the pool files the same on every node?"
        )
    return res


def set_micro_incidences(
    features: Any,
    families: Iterable[str],
    *,
    source: Any = None,
    load: dict[str, Any] | None = None,
    address: str | None = None,
) -> dict[str, RayTokenStats]:
    """Compute the micro incidences among ``families`` on Ray and set them on ``features``.

    Families that are not micro, or whose incidence ``features`` holds already, are left
    alone (the local engine computes them when needed). The band is
    ``features.options.lo``/``hi`` and the tokenizer ``features.options.tokenizer``, as the
    local engine's. Each family's seconds are added to ``features.timings`` under
    ``types-<family>`` (as the local stage is).

    Returns
    -------
    dict of str to RayTokenStats
        The cluster's statistics per family set.
    """
    from tritondiv.families import parse_family

    done: dict[str, RayTokenStats] = {}
    computed = set(features.computed_families())
    for family in sorted(set(families)):
        component, level = parse_family(family)
        if level != "micro" or family in computed:
            continue
        if features.on_stage is not None:
            features.on_stage(f"types {family} on Ray")
        t0 = time.perf_counter()
        res = pool_token_stats(
            features.pool,
            component,
            source=source,
            load=load,
            tokenizer=features.options.tokenizer,
            lo=features.options.lo,
            hi=features.options.hi,
            address=address,
        )
        features.set_incidence(family, res.incidence)
        stage = f"types-{family}"
        features.timings[stage] = features.timings.get(stage, 0.0) + time.perf_counter() - t0
        done[family] = res
    return done


def cluster_cpus(address: str | None = None) -> int:
    """The CPUs of the Ray cluster (connecting to it as :func:`~tritondiv.distributed._ray.ensure_ray`)."""
    from tritondiv.distributed._ray import ensure_ray

    ray = ensure_ray(address)
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


class RayFeatures(Features):
    """The features of ``--engine ray``: embeddings, keyphrase tags and the embedding
    baselines' picks on the cluster.

    Embeddings that are not given precomputed are computed on Ray Data
    (:func:`~tritondiv.distributed.features.embed_ray`), keyphrase tags in two passes
    (:func:`~tritondiv.distributed.features.keyphrase_tags_ray`); the meso and macro
    incidences are then built here from them by the local code.

    ``kcenter`` runs :func:`~tritondiv.distributed.kcenter_greedy_distributed` and
    ``facility-location`` :func:`~tritondiv.distributed.facility_location_greedi` on each
    level's candidate pool (its rows of the component's embeddings; facility location on
    the candidates' cosine kNN graph with ``knn`` neighbours — the whole pool's graph at
    level 1, as the local engine's — or on the option ``graph`` restricted to them), seeded
    by the strategy's seed, over ``partitions`` parts. The selection's ``engine`` field
    records ``{"engine": "ray", "partitions", "radius"|"objective", "candidates_round2",
    "seconds"}`` and, for candidate pools of at most ``reference_max_rows`` rows, the
    single-machine value (``single_machine_radius``; ``single_machine_objective``, with
    ``objective_single_machine_graph``: the Ray selection's objective on the same
    single-machine graph) and their ``ratio``. ``objective`` is on the graph the cluster
    built, which equals the single-machine kNN graph up to the choice among exactly tied
    neighbours (duplicated rows).

    Parameters
    ----------
    pool, options, seed
        As :class:`~tritondiv.feature_store.Features`.
    address : str, optional
        Ray cluster to join (default: the running session, else a new local one).
    partitions : int, optional
        Parts of the two-round selections (default: the cluster's CPUs); at most the
        candidate pool's rows.
    reference_max_rows : int
        Largest candidate pool whose single-machine value is also computed.
    """

    def __init__(
        self,
        pool: Any,
        options: FeatureOptions | None = None,
        *,
        seed: int = 0,
        address: str | None = None,
        partitions: int | None = None,
        reference_max_rows: int = REFERENCE_MAX_ROWS,
    ) -> None:
        super().__init__(pool, options, seed=seed)
        if partitions is not None and (
            isinstance(partitions, bool) or not isinstance(partitions, int | np.integer)
        ):
            raise TypeError(f"partitions must be an int or None, got {type(partitions).__name__}")
        if partitions is not None and partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {partitions}")
        self.address = address
        self._partitions = None if partitions is None else int(partitions)
        self.reference_max_rows = int(reference_max_rows)
        #: strategy name -> pick run on the cluster (read by the strategies' baselines)
        self.picks = {"kcenter": _ray_pick_kcenter, "facility-location": _ray_pick_facility}

    def embeddings(self, component: str) -> np.ndarray:
        """The component's embeddings: precomputed ones as locally, else computed on Ray
        Data (:func:`~tritondiv.distributed.features.embed_ray`, the local model and
        options; equal to the local ones to float32 rounding)."""
        pre = getattr(self.options, f"embeddings_{component}", None)
        if pre is not None or self.has_embeddings(component):
            return super().embeddings(component)
        from tritondiv.distributed.features import embed_ray

        def compute() -> np.ndarray:
            return embed_ray(
                self.pool, component, self.options.embedding_model, address=self.address
            )

        return self._timed(self._embeddings, component, f"embed-{component}", compute)

    def tags(self, component: str) -> list[list[str]]:
        """Raw tags: the keyphrase tagger runs on Ray in two passes
        (:func:`~tritondiv.distributed.features.keyphrase_tags_ray`: global phrase
        document frequencies, then tagging), equal to the local tags; column and llm tags
        are computed here as locally. The meso incidence is then normalized here, by the
        local code."""
        if self.options.tagger != "keyphrase" or component in self._tags:
            return super().tags(component)
        from tritondiv.distributed.features import keyphrase_tags_ray
        from tritondiv.feature_store import make_tagger

        def compute() -> list[list[str]]:
            tagger = make_tagger(
                self.options.tagger,
                embedding_model=self.options.embedding_model,
                progress=False,
                max_words=self.options.tag_max_words,
            )
            docs = None
            # the local tagger scores against the model's embeddings (never precomputed ones)
            if getattr(self.options, f"embeddings_{component}", None) is None:
                if tagger.max_seq_length == 128:  # the embeddings' (embed_pool's default)
                    docs = self.embeddings(component)
            res = keyphrase_tags_ray(
                self.pool, component, tagger, doc_embeddings=docs, address=self.address
            )
            return res.tags

        return self._timed(self._tags, component, f"tag-{component}", compute)

    @property
    def partitions(self) -> int:
        """The parts of the two-round selections (the cluster's CPUs unless given)."""
        if self._partitions is None:
            self._partitions = cluster_cpus(self.address)
        return self._partitions


def _engine_info(features: RayFeatures, res: Any, parts: int) -> dict[str, Any]:
    info: dict[str, Any] = {"engine": "ray", "partitions": int(parts)}
    if res.radius is not None:
        info["radius"] = float(res.radius)
    if res.objective is not None:
        info["objective"] = float(res.objective)
    info["candidates_round2"] = int(res.candidates.size)
    info["seconds"] = {k: round(float(v), 4) for k, v in res.seconds.items()}
    return info


def _ray_pick_kcenter(
    features: Features, cand: np.ndarray, n: int, seed: int
) -> tuple[np.ndarray, dict[str, Any]]:
    from tritondiv.distributed.selection import covering_radius, kcenter_greedy_distributed

    assert isinstance(features, RayFeatures)
    X = np.ascontiguousarray(features.embeddings(features.options.component)[cand])
    parts = min(features.partitions, int(cand.size))
    res = kcenter_greedy_distributed(X, n, parts, seed, metric="cosine", address=features.address)
    info = _engine_info(features, res, parts)
    if cand.size <= features.reference_max_rows:
        from tritondiv.select import kcenter_greedy

        single = kcenter_greedy(X, n, metric="cosine", seed=seed).indices
        r0 = covering_radius(X, single, "cosine")
        info["single_machine_radius"] = float(r0)
        info["ratio"] = float(info["radius"] / r0) if r0 > 0 else 1.0
    return cand[res.indices], {"engine": info}


def _ray_pick_facility(
    features: Features, cand: np.ndarray, n: int, seed: int
) -> tuple[np.ndarray, dict[str, Any]]:
    from tritondiv.distributed.selection import facility_location_greedi

    assert isinstance(features, RayFeatures)
    if features.quality() is not None:
        raise ValueError(
            "quality: GreeDi on Ray has no gain weights; run facility-location with quality "
            "on --engine local"
        )
    opts = features.options
    parts = min(features.partitions, int(cand.size))
    graph = None
    X = None
    if opts.graph is not None:
        full = features.knn(opts.component)  # the option's graph, checked N x N
        graph = full[cand][:, cand].tocsr() if cand.size != full.shape[0] else full
    else:
        X = np.ascontiguousarray(features.embeddings(opts.component)[cand])
    res = facility_location_greedi(
        X, n, parts, seed, k=int(opts.knn), graph=graph, address=features.address
    )
    info = _engine_info(features, res, parts)
    if cand.size <= features.reference_max_rows:
        from tritondiv.distributed.selection import facility_objective
        from tritondiv.select import facility_location

        if graph is None:
            from tritondiv.kernels import knn_graph

            graph = knn_graph(X, int(opts.knn), symmetrize=True, progress=False)
        # both on the single-machine graph (the cluster's graph can list other neighbours
        # among exact ties: duplicated rows)
        f0 = float(facility_objective(graph, facility_location(graph, n).indices))
        f1 = float(facility_objective(graph, res.indices))
        info["objective_single_machine_graph"] = f1
        info["single_machine_objective"] = f0
        info["ratio"] = f1 / f0 if f0 > 0 else 1.0
    return cand[res.indices], {"knn": int(opts.knn), "engine": info}
