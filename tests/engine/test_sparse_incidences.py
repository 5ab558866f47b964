"""Every engine entry point and the strategies take a scipy.sparse incidence (rows =
samples, columns = types) and select exactly as from the same :class:`Incidence`."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import tritondiv as td
from tritondiv.incidence import Incidence


def _dense(seed: int, shape: tuple[int, int] = (80, 25)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = (rng.random(shape) < 0.12).astype(np.int8)
    m[rng.integers(0, shape[0], 5)] = 0  # a few samples with no type
    return m


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_engine_calls_take_scipy_matrices(fmt: str) -> None:
    dense = _dense(3)
    m = sp.csr_matrix(dense).asformat(fmt)
    inc = Incidence.from_lists([np.flatnonzero(r).tolist() for r in dense], n_types=25)
    a, b = td.prune_types(m, seed=2), td.prune_types(inc, seed=2)
    assert np.array_equal(a.removal_order, b.removal_order)
    assert np.array_equal(a.pool_sizes, b.pool_sizes)
    same = [
        (td.select_types(m, 20, 0.5, seed=1), td.select_types(inc, 20, 0.5, seed=1)),
        (td.balanced_greedy(m, 15, g="sqrt"), td.balanced_greedy(inc, 15, g="sqrt")),
        (td.uniform_types(m, 20, 0.3, seed=4), td.uniform_types(inc, 20, 0.3, seed=4)),
    ]
    ladders = zip(
        td.select_types_ladder(m, 20, [0.0, 1.0], progress=False),
        td.select_types_ladder(inc, 20, [0.0, 1.0], progress=False),
        strict=True,
    )
    for x, y in [*same, *ladders]:
        assert x.indices.tolist() == y.indices.tolist()
        assert x.coverage == y.coverage


def test_the_strategies_take_a_scipy_incidence() -> None:
    """``incidences=`` of the API (and :meth:`Features.set_incidence`): the user's own
    types as a scipy.sparse matrix, selected by a type strategy like the same Incidence."""
    from tritondiv.api import select_from

    dense = _dense(8, (120, 30))
    rows = [
        {"instruction": f"question {i}", "output": f"answer {i} " + "word " * (i % 7)}
        for i in range(dense.shape[0])
    ]
    inc = Incidence.from_scipy(sp.csr_matrix(dense))
    kw: dict[str, object] = {"size": 25, "level": 0.5, "tokenizer": "whitespace"}
    a = select_from(rows, "response-meso", incidences={"response-meso": sp.csc_matrix(dense)}, **kw)
    b = select_from(rows, "response-meso", incidences={"response-meso": inc}, **kw)
    ref = td.select_types(inc.subset(np.flatnonzero(dense.any(axis=1))), 25, 0.5)
    assert a.indices.tolist() == b.indices.tolist()
    assert a.indices.tolist() == np.flatnonzero(dense.any(axis=1))[ref.indices].tolist()
    assert a.manifest["n_types"] == 30
    with pytest.raises(ValueError, match="the incidence has 3 samples, the pool 120"):
        select_from(rows, "response-meso", incidences={"response-meso": sp.eye(3)}, **kw)
    with pytest.raises(
        TypeError, match=r"expected an Incidence or a scipy\.sparse matrix, got ndarray"
    ):
        select_from(rows, "response-meso", incidences={"response-meso": dense}, **kw)
