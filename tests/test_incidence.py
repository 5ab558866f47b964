"""Incidence.from_scipy / Incidence.coerce: scipy.sparse matrices (csr, csc, coo; int, bool,
float data) as sample -> types incidences, checked against a dense numpy reference; and
select_types taking one directly."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from tritondiv.incidence import Incidence
from tritondiv.select import select_types


def _dense_rows(dense: np.ndarray) -> list[list[int]]:
    return [np.flatnonzero(row).tolist() for row in dense]


def _same(a: Incidence, b: Incidence) -> bool:
    return (
        a.n_types == b.n_types
        and np.array_equal(a.offsets, b.offsets)
        and np.array_equal(a.types, b.types)
    )


def _random_dense(seed: int, shape: tuple[int, int] = (40, 25)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.integers(-3, 4, size=shape)
    return np.where(rng.random(shape) < 0.2, values, 0)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
@pytest.mark.parametrize("dtype", [np.int8, np.int64, np.uint16, np.bool_, np.float32, np.float64])
def test_from_scipy_matches_dense_reference(fmt: str, dtype: type) -> None:
    dense = _random_dense(3).astype(dtype)
    m = sp.csr_matrix(dense).asformat(fmt)
    inc = Incidence.from_scipy(m)
    assert inc.n_samples == dense.shape[0] and inc.n_types == dense.shape[1]
    assert [inc.row(i).tolist() for i in range(inc.n_samples)] == _dense_rows(dense)
    assert _same(inc, Incidence.from_lists(_dense_rows(dense), n_types=dense.shape[1]))


def test_from_scipy_sparse_arrays_and_explicit_zeros() -> None:
    # a stored zero does not carry its type; coo duplicates count by their sum
    m = sp.coo_matrix(
        (
            np.array([1.0, 0.0, 2.0, 0.5, -0.5]),
            (np.array([0, 0, 1, 2, 2]), np.array([3, 1, 0, 2, 2])),
        ),
        shape=(4, 5),
    )
    inc = Incidence.from_scipy(m)
    assert [inc.row(i).tolist() for i in range(4)] == [[3], [0], [], []]
    assert inc.n_types == 5
    assert _same(Incidence.from_scipy(sp.csr_array(m.toarray())), inc)
    assert m.nnz == 5  # the input is not modified


def test_from_scipy_unsorted_indices_are_sorted() -> None:
    m = sp.csr_matrix(
        (np.ones(3), np.array([4, 0, 2]), np.array([0, 3])), shape=(1, 5)
    )  # indices out of order, as some builders leave them
    assert Incidence.from_scipy(m).row(0).tolist() == [0, 2, 4]


def test_from_scipy_bad_inputs() -> None:
    with pytest.raises(TypeError, match=r"from_scipy: expected a scipy.sparse matrix, got ndarray"):
        Incidence.from_scipy(np.eye(3))
    with pytest.raises(TypeError, match=r"data must be integer, boolean or float, got complex128"):
        Incidence.from_scipy(sp.csr_matrix(np.eye(2, dtype=complex)))
    with pytest.raises(ValueError, match="holds NaN"):
        Incidence.from_scipy(sp.csr_matrix(np.array([[np.nan, 1.0]])))


def test_coerce() -> None:
    inc = Incidence.from_lists([[0], [1, 2]])
    assert Incidence.coerce(inc) is inc
    assert _same(Incidence.coerce(sp.csr_matrix(np.array([[1, 0, 0], [0, 1, 1]]))), inc)
    with pytest.raises(TypeError, match=r"features: expected a tritondiv.Incidence or a scipy"):
        Incidence.coerce([[0], [1]], "features")


def test_select_types_takes_a_scipy_matrix() -> None:
    dense = _random_dense(7, (60, 30))
    m = sp.csc_matrix(dense)
    a = select_types(m, 20, level=0.5, seed=1)
    b = select_types(Incidence.from_scipy(m), 20, level=0.5, seed=1)
    assert np.array_equal(a.indices, b.indices)
    with pytest.raises(TypeError, match=r"incidence: expected a tritondiv.Incidence or a scipy"):
        select_types(dense, 20, level=0.5)  # type: ignore[arg-type]
