"""tritondiv/_core.pyi matches the compiled module: the same functions, the same parameter
names and defaults, and tuple results of the stated length and dtypes."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

import tritondiv
from tritondiv import _core

STUB = Path(tritondiv.__file__).with_name("_core.pyi")


def _stub_functions() -> dict[str, ast.FunctionDef]:
    tree = ast.parse(STUB.read_text(encoding="utf-8"))
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}


def _split_top(s: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def _runtime_params(fn: object) -> list[tuple[str, bool]]:
    first = (fn.__doc__ or "").splitlines()[0]
    m = re.match(r"\w+\((.*)\) ->", first)
    assert m, first
    return [(p.split(":")[0].strip(), "=" in p) for p in _split_top(m.group(1))]


def test_stub_lists_every_function_of_the_module() -> None:
    public = {n for n in dir(_core) if not n.startswith("_") and callable(getattr(_core, n))}
    assert set(_stub_functions()) == public


@pytest.mark.parametrize("name", sorted(_stub_functions()))
def test_stub_parameters_match_the_binding(name: str) -> None:
    node = _stub_functions()[name]
    args = node.args.args
    n_defaults = len(node.args.defaults)
    stub = [(a.arg, i >= len(args) - n_defaults) for i, a in enumerate(args)]
    assert stub == _runtime_params(getattr(_core, name))


def _tuple_dtypes(name: str) -> list[str | None]:
    """The stub's tuple element types: a numpy dtype name, or None for int/float."""
    ret = _stub_functions()[name].returns
    assert isinstance(ret, ast.Subscript) and ast.unparse(ret.value) == "tuple"
    elems = ret.slice.elts if isinstance(ret.slice, ast.Tuple) else [ret.slice]
    out: list[str | None] = []
    for e in elems:
        m = re.search(r"np\.(\w+)\]$", ast.unparse(e))
        out.append(m.group(1) if m else None)
    return out


OFF = np.array([0, 2, 3, 5], np.int64)
TY = np.array([0, 1, 1, 0, 2], np.int32)
CALLS = {
    "token_counts": lambda: _core.token_counts(OFF, TY, 3),
    "band_incidence": lambda: _core.band_incidence(OFF, TY, 3, np.array([2, 2, 1]), 1, 2),
    "distinct_ngrams": lambda: _core.distinct_ngrams(OFF, TY, 3, 2),
    "prune_types": lambda: _core.prune_types(OFF, TY, 3, 0),
    "balanced_greedy": lambda: _core.balanced_greedy(
        OFF, TY, 3, np.arange(3, dtype=np.int64), 2, 0, 0.0, np.empty(0), 0.0, 0
    ),
    "kcenter_greedy": lambda: _core.kcenter_greedy(np.eye(3, dtype=np.float32), 2, 0),
    "facility_location_csr": lambda: _core.facility_location_csr(OFF, TY, np.ones(5), 3, 2),
    "facility_location_dense": lambda: _core.facility_location_dense(np.eye(3), 2),
    "threshold_filter": lambda: _core.threshold_filter(
        np.eye(3, dtype=np.float32), 2, 0.5, np.arange(3, dtype=np.int64)
    ),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_tuple_results_have_the_stubs_length_and_dtypes(name: str) -> None:
    result = CALLS[name]()
    want = _tuple_dtypes(name)
    assert isinstance(result, tuple) and len(result) == len(want)
    for value, dt in zip(result, want, strict=True):
        if dt is None:
            assert isinstance(value, int | float)
        else:
            assert isinstance(value, np.ndarray) and value.dtype == np.dtype(dt), (dt, value)


def test_every_tuple_returning_function_is_exercised() -> None:
    tuple_returning = {
        name
        for name, node in _stub_functions().items()
        if isinstance(node.returns, ast.Subscript) and ast.unparse(node.returns.value) == "tuple"
    }
    assert tuple_returning == set(CALLS)
