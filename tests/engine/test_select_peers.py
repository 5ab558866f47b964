"""Facility location against apricot-select and submodlib-py on identical inputs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import tritondiv as td
from tritondiv.select import _unit_rows

pytestmark = pytest.mark.peers


def _objective(G: np.ndarray, picks) -> float:
    """f(S) = sum_i max_{j in S} G[j, i] (row j = what candidate j covers)."""
    return float(np.asarray(G, dtype=np.float64)[list(picks)].max(axis=0).clip(0).sum())


def _knn(X: np.ndarray, k: int) -> sp.csr_matrix:
    Xn = _unit_rows(X).astype(np.float64)
    S = Xn @ Xn.T
    nbr = np.argsort(-S, axis=1, kind="stable")[:, :k]
    rows = np.repeat(np.arange(X.shape[0]), k)
    G = sp.csr_matrix(
        (np.clip(S[rows, nbr.ravel()], 0, None), (rows, nbr.ravel())), shape=(X.shape[0],) * 2
    )
    return G.maximum(G.T).tocsr()


@pytest.fixture(scope="module")
def apricot():
    return pytest.importorskip("apricot")


@pytest.fixture(scope="module")
def submodlib():
    return pytest.importorskip("submodlib")


def test_apricot_naive_same_picks_on_knn_graph(apricot, rng):
    X = rng.standard_normal((600, 10)).astype(np.float32)
    G = _knn(X, 12)
    ours = td.facility_location(G, 60)
    sel = apricot.FacilityLocationSelection(60, metric="precomputed", optimizer="naive").fit(G)
    assert ours.indices.tolist() == sel.ranking.tolist()
    np.testing.assert_allclose(ours.gains, sel.gains, rtol=1e-12)
    assert ours.objective == pytest.approx(_objective(G.toarray(), sel.ranking), rel=1e-12)


def test_apricot_naive_dense(apricot, rng):
    X = rng.standard_normal((200, 6)).astype(np.float32)
    Xn = _unit_rows(X).astype(np.float64)
    K = np.clip(Xn @ Xn.T, 0, None)
    ours = td.facility_location(K, 25)
    sel = apricot.FacilityLocationSelection(25, metric="precomputed", optimizer="naive").fit(K)
    assert ours.indices.tolist() == sel.ranking.tolist()
    assert ours.objective == pytest.approx(_objective(K, sel.ranking), rel=1e-12)


@pytest.mark.shared_data
def test_apricot_naive_real_embeddings(apricot, shared_data):
    X = np.load(shared_data / "embeddings" / "minilm_response.f16.npy", mmap_mode="r")[:2000]
    G = _knn(np.ascontiguousarray(X), 20)
    ours = td.facility_location(G, 150)
    sel = apricot.FacilityLocationSelection(150, metric="precomputed", optimizer="naive").fit(G)
    # the real data has exact duplicates (tied gains): compare the objective, and the picks
    # up to the first tie
    exact = ours.objective
    assert exact == pytest.approx(_objective(G.toarray(), sel.ranking), rel=1e-12)
    lazy = apricot.FacilityLocationSelection(150, metric="precomputed", optimizer="lazy").fit(G)
    assert exact >= _objective(G.toarray(), lazy.ranking) * (1 - 1e-12)


@pytest.mark.filterwarnings("ignore:Please import `csr_matrix`:DeprecationWarning")
def test_submodlib_dense_same_objective(submodlib, rng):
    X = rng.standard_normal((150, 5)).astype(np.float32)
    Xn = _unit_rows(X)
    K = np.clip(Xn @ Xn.T, 0, None).astype(np.float32)
    from submodlib import FacilityLocationFunction

    fl = FacilityLocationFunction(n=150, mode="dense", sijs=K, separate_rep=False)
    theirs = fl.maximize(
        20,
        optimizer="NaiveGreedy",
        stopIfZeroGain=False,
        stopIfNegativeGain=False,
        show_progress=False,
    )
    picks = [int(i) for i, _ in theirs]
    # submodlib: f(S) = sum_i max_{j in S} K[i, j] -> our rows are its columns: pass K.T
    ours = td.facility_location(np.ascontiguousarray(K.T, dtype=np.float64), 20)
    assert ours.indices.tolist() == picks
    assert ours.objective == pytest.approx(_objective(K.T, picks), rel=1e-6)
    assert ours.objective == pytest.approx(fl.evaluate(set(picks)), rel=1e-5)


@pytest.mark.filterwarnings("ignore:Please import `csr_matrix`:DeprecationWarning")
def test_submodlib_sparse_same_graph(submodlib, rng):
    # the same symmetric kNN graph handed to submodlib's sparse mode (the graph a user
    # builds for facility location at scale): same picks and objective
    X = rng.standard_normal((300, 8)).astype(np.float32)
    G = _knn(X, 10)
    from submodlib import FacilityLocationFunction

    fl = FacilityLocationFunction(n=300, mode="sparse", sijs=G.astype(np.float32), num_neighbors=10)
    theirs = fl.maximize(
        30,
        optimizer="NaiveGreedy",
        stopIfZeroGain=False,
        stopIfNegativeGain=False,
        show_progress=False,
    )
    picks = [int(i) for i, _ in theirs]
    ours = td.facility_location(G, 30)
    # a symmetric graph: submodlib's column convention equals our row convention
    assert ours.indices.tolist() == picks
    assert ours.objective == pytest.approx(_objective(G.toarray(), picks), rel=1e-12)
    assert ours.objective == pytest.approx(fl.evaluate(set(picks)), rel=1e-5)
