"""``kcenter`` and ``facility-location`` with ``--engine ray``: two-round partitioned greedy
on the session cluster, on real embeddings; deterministic, equal to the reference functions
of :mod:`tritondiv.distributed.selection`, close to the single-machine engine, and recorded
in the manifests."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tritondiv as td
from tritondiv.distributed import (
    covering_radius,
    facility_location_greedi,
    facility_objective,
    kcenter_greedy_distributed,
)
from tritondiv.distributed.engine import RayFeatures
from tritondiv.feature_store import FeatureOptions, Features
from tritondiv.strategies import run_strategy

pytestmark = [
    pytest.mark.shared_data,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*"),
]

N_SELECT = 120


@pytest.fixture(scope="module")
def mixed(make_mixed_pool: Callable[..., dict[str, Any]], tmp_path_factory: Any) -> dict[str, Any]:
    """1500 real samples (T0 templates + GSM8K) with their MiniLM response embeddings."""
    return make_mixed_pool(tmp_path_factory.mktemp("mixed"), n_t0=1200, n_gsm=300)


def _options(mixed: dict[str, Any]) -> FeatureOptions:
    return FeatureOptions(embeddings_response=str(mixed["emb"]["response"]), progress=False)


def _ray_features(mixed: dict[str, Any], partitions: int | None = 2) -> RayFeatures:
    return RayFeatures(td.load_pool(mixed["pool"]), _options(mixed), partitions=partitions)


def test_kcenter_on_ray_is_the_composable_kcenter(ray_session: Any, mixed: dict[str, Any]) -> None:
    feats = _ray_features(mixed, partitions=None)
    assert feats.partitions == 2  # the session cluster's CPUs
    (top, mid) = run_strategy("kcenter", feats, N_SELECT, [1.0, 0.5], seed=3)
    again = run_strategy("kcenter", _ray_features(mixed), N_SELECT, [1.0, 0.5], seed=3)
    assert [s.ids for s in again] == [top.ids, mid.ids]  # deterministic across runs
    # level 1: the whole pool is the candidate pool -> exactly the reference function
    X = feats.embeddings("response")
    assert top.candidates == X.shape[0]
    ref = kcenter_greedy_distributed(X, N_SELECT, 2, 3)
    np.testing.assert_array_equal(top.indices, ref.indices)
    eng = top.engine
    assert eng is not None and eng["engine"] == "ray" and eng["partitions"] == 2
    assert eng["radius"] == pytest.approx(covering_radius(X, ref.indices), abs=1e-6)
    assert eng["candidates_round2"] == ref.candidates.size
    single = td.kcenter_greedy(X, N_SELECT, seed=3).indices
    assert eng["single_machine_radius"] == pytest.approx(covering_radius(X, single), abs=1e-6)
    assert eng["ratio"] == pytest.approx(eng["radius"] / eng["single_machine_radius"])
    assert eng["ratio"] <= 4.0  # composable k-center: within 4x the optimum
    assert mid.engine is not None and mid.candidates is not None and mid.candidates < X.shape[0]
    assert len(set(mid.indices.tolist())) == N_SELECT


def test_facility_location_on_ray_is_greedi_near_the_single_machine(
    ray_session: Any, mixed: dict[str, Any]
) -> None:
    feats = _ray_features(mixed)
    (sel,) = run_strategy("facility-location", feats, N_SELECT, [1.0], seed=0)
    (again,) = run_strategy("facility-location", _ray_features(mixed), N_SELECT, [1.0], seed=0)
    assert again.ids == sel.ids
    X = feats.embeddings("response")
    ref = facility_location_greedi(X, N_SELECT, 2, 0, k=feats.options.knn)
    np.testing.assert_array_equal(sel.indices, ref.indices)
    # the single-machine engine on the same pool and options
    local = Features(td.load_pool(mixed["pool"]), _options(mixed))
    (loc,) = run_strategy("facility-location", local, N_SELECT, [1.0], seed=0)
    graph = local.knn("response")
    f_ray = facility_objective(graph, sel.indices)
    f_local = facility_objective(graph, loc.indices)
    eng = sel.engine
    assert eng is not None and eng["partitions"] == 2 and sel.knn == feats.options.knn
    assert eng["objective"] == pytest.approx(ref.objective)
    assert eng["objective_single_machine_graph"] == pytest.approx(f_ray, rel=1e-6)
    assert eng["single_machine_objective"] == pytest.approx(f_local, rel=1e-6)
    assert eng["ratio"] == pytest.approx(f_ray / f_local, rel=1e-6)
    assert f_ray >= 0.98 * f_local


@pytest.mark.slow
def test_select_cli_on_ray_records_the_engine(
    ray_session: Any, mixed: dict[str, Any], tmp_path: Path
) -> None:
    from tritondiv.cli import main

    pool = tmp_path / "pool"  # the two files in one folder (read in the embedding rows' order)
    pool.mkdir()
    for path in map(Path, mixed["pool"]):
        (pool / path.name).write_bytes(path.read_bytes())
    argv = [
        "select", str(pool), "--level", "1", "--size", "60", "--no-metrics", "--no-progress",
        "--embeddings-response", str(mixed["emb"]["response"]), "--strategy",
        "facility-location", "--engine", "ray", "--partitions", "3", "--out", str(tmp_path / "fl"),
    ]  # fmt: skip
    assert main(argv) == 0
    man = json.loads((tmp_path / "fl" / "manifest.json").read_text())
    assert man["engine"]["engine"] == "ray" and man["engine"]["partitions"] == 3
    assert man["engine"]["ratio"] >= 0.98 and "objective" in man["engine"]
    assert man["knn"] == FeatureOptions().knn and len(man["ids"]) == 60


def test_quality_weights_are_refused_by_greedi_before_the_cluster(mixed: dict[str, Any]) -> None:
    from tritondiv.distributed.engine import _ray_pick_facility

    features = _ray_features(mixed)
    features.set_quality(np.linspace(0.0, 1.0, features.n_samples))
    with pytest.raises(ValueError, match="quality: GreeDi on Ray has no gain weights"):
        _ray_pick_facility(features, np.arange(features.n_samples), 10, 0)


def test_the_api_takes_the_engine_keywords(ray_session: Any, mixed: dict[str, Any]) -> None:
    pool = mixed["pool"]  # two files: the loaded pool is shipped to the cluster
    emb = str(mixed["emb"]["response"])
    # micro: the incidence computed on the cluster, the selection equal to the local one
    kw: dict[str, Any] = {"size": 60, "level": 0.5, "seed": 1, "progress": False}
    local = td.select_from(pool, "response-micro", **kw)
    on_ray = td.select(pool, "response-micro", engine="ray", **kw)
    np.testing.assert_array_equal(on_ray.indices, local.indices)
    # one file: the cluster reads and tokenizes it itself
    one = str(mixed["pool"][1])
    np.testing.assert_array_equal(
        td.select_from(one, "response-micro", engine="ray", **kw).indices,
        td.select_from(one, "response-micro", **kw).indices,
    )
    # kcenter: the composable k-center over the partitions asked for
    kc = td.select_from(
        pool, "kcenter", size=N_SELECT, seed=3, embeddings_response=emb, progress=False,
        engine="ray", partitions=2,
    )  # fmt: skip
    feats = _ray_features(mixed)
    ref = kcenter_greedy_distributed(feats.embeddings("response"), N_SELECT, 2, 3)
    np.testing.assert_array_equal(kc.indices, ref.indices)
    assert kc.manifest["engine"]["partitions"] == 2


def test_the_api_engine_keywords_are_checked(mixed: dict[str, Any]) -> None:
    pool = mixed["pool"]
    with pytest.raises(ValueError, match=r"engine \(--engine\) must be one of"):
        td.select_from(pool, "response-micro", size=5, engine="spark")
    with pytest.raises(ValueError, match="--partitions needs --engine ray"):
        td.select_from(pool, "response-micro", size=5, partitions=2)
    with pytest.raises(TypeError, match="partitions must be an int"):
        td.select_from(pool, "response-micro", size=5, engine="ray", partitions="2")
