"""Regressions at the C++ boundary (tritondiv._core): inputs that used to crash the process.

Each case runs in a fresh interpreter so that a crash (a signal) fails the test with the
case's output instead of killing pytest. The expected outcome is a specific Python error.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import tritondiv
from tritondiv import _core

_ROOT = Path(tritondiv.__file__).resolve().parent.parent
# Under AddressSanitizer (`make sanitize`) a huge allocation aborts the process instead of
# throwing std::bad_alloc, so the MemoryError cases cannot run there.
_SANITIZED = os.environ.get("TRITONDIV_FUZZ_SANITIZE") == "1" or "libasan" in os.environ.get(
    "LD_PRELOAD", ""
)
_needs_real_allocator = pytest.mark.skipif(
    _SANITIZED, reason="ASan aborts on huge allocations instead of raising MemoryError"
)


def _run_isolated(body: str, *, expect: str) -> None:
    """Run `body` in a child interpreter; it must raise `expect` (an exception type name)."""
    code = (
        "import numpy as np\n"
        "import tritondiv._core as c\n"
        "try:\n"
        + textwrap.indent(textwrap.dedent(body).strip(), "    ")
        + f"\nexcept {expect} as exc:\n"
        "    print('RAISED', type(exc).__name__, exc)\n"
        "else:\n"
        "    print('RETURNED')\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, cwd="/"
    )
    assert proc.returncode == 0, f"child died (rc={proc.returncode}):\n{proc.stderr[-2000:]}"
    assert proc.stdout.startswith("RAISED"), proc.stdout + proc.stderr


# ---- 1. range checks that overflowed -----------------------------------------------------


@pytest.mark.parametrize("row0", [2**63 - 1, 2**63 - 2, 2**62, -1, -(2**63)])
def test_argmax_merge_rows_rejects_offsets_that_overflow(row0: int) -> None:
    _run_isolated(
        f"""
        c.argmax_merge_rows(np.ones((1, 1), np.float32), {row0}, 0, 1.0, None,
                            np.full(4, -np.inf, np.float32), np.full(4, -1, np.int64))
        """,
        expect="ValueError",
    )


@pytest.mark.parametrize("col0", [2**63 - 1, -(2**63), -1])
def test_argmax_merge_rows_rejects_candidate_ids_that_overflow(col0: int) -> None:
    _run_isolated(
        f"""
        c.argmax_merge_rows(np.ones((2, 2), np.float32), 0, {col0}, 1.0, None,
                            np.full(4, -np.inf, np.float32), np.full(4, -1, np.int64))
        """,
        expect="ValueError",
    )


@pytest.mark.parametrize(
    ("row0", "col0", "transposed"),
    [
        (2**63 - 1, 0, False),
        (2**62, 0, False),
        (-1, 0, False),
        (0, 2**63 - 1, False),
        (0, -5, False),
        (0, 2**63 - 1, True),
        (0, 2**62 + 1, True),
        (-(2**63), 2, True),
    ],
)
def test_topk_merge_block_rejects_offsets_that_overflow(
    row0: int, col0: int, transposed: bool
) -> None:
    _run_isolated(
        f"""
        vals = np.full((4, 2), -np.inf, np.float32)
        ids = np.full((4, 2), 2**63 - 1, np.int64)
        c.topk_merge_block(np.ones((1, 1), np.float32), {row0}, {col0}, 1.0, None, None,
                           False, {transposed}, vals, ids)
        """,
        expect="ValueError",
    )


def test_merges_still_accept_a_block_that_ends_at_the_last_row() -> None:
    bv = np.full(4, -np.inf, np.float32)
    bi = np.full(4, -1, np.int64)
    _core.argmax_merge_rows(np.full((2, 3), 2.0, np.float32), 2, 10, 1.0, None, bv, bi)
    assert bi.tolist() == [-1, -1, 10, 10] and bv[2:].tolist() == [2.0, 2.0]
    vals = np.full((4, 2), -np.inf, np.float32)
    ids = np.full((4, 2), 2**63 - 1, np.int64)
    g = np.array([[1.0, 3.0]], np.float32)
    _core.topk_merge_block(g, 3, 0, 1.0, None, None, False, True, vals, ids)
    _core.topk_finalize(vals, ids)
    assert ids[3].tolist() == [1, 0] and ids[0].tolist() == [3, -1] and ids[1].tolist() == [3, -1]


def test_topk_finalize_orders_nan_slots_last() -> None:
    # A NaN in the caller's state used to break the sort's ordering (an out-of-bounds read
    # is possible with an inconsistent comparator); NaNs now sort after every number.
    rng = np.random.default_rng(0)
    vals = rng.standard_normal((3, 40)).astype(np.float32)
    vals[:, ::3] = np.nan
    ids = np.tile(np.arange(40, dtype=np.int64), (3, 1))
    _core.topk_finalize(vals, ids)
    for r in range(3):
        finite = vals[r][~np.isnan(vals[r])]
        assert np.isnan(vals[r][finite.size :]).all()
        assert (np.diff(finite) <= 0).all()
        nan_ids = ids[r][finite.size :]
        assert (np.diff(nan_ids) > 0).all()


def test_rebuilt_arrays_of_the_right_dtype_are_accepted() -> None:
    # An unpickled array carries its own dtype object (equal to, not the same object as,
    # numpy's builtin one); the bindings used to reject it ("expected int64, got int64").
    import pickle

    off = pickle.loads(pickle.dumps(np.array([0, 2, 3], np.int64)))
    ids = pickle.loads(pickle.dumps(np.array([1, 0, 1], np.int32)))
    counts, df, lengths, distinct = _core.token_counts(off, ids, 2)
    assert counts.tolist() == [1, 2] and df.tolist() == [1, 2]
    assert lengths.tolist() == [2, 1] and distinct.tolist() == [2, 1]
    x = pickle.loads(pickle.dumps(np.array([[0.0], [1.0], [3.0]], np.float16)))
    idx, _, _ = _core.kcenter_greedy(x, 2, 0)
    assert idx.tolist() == [0, 2]
    with pytest.raises(TypeError, match="int64"):
        _core.token_counts(off.astype(">i8"), ids, 2)


# ---- 2. thread counts -----------------------------------------------------------------


@pytest.mark.parametrize("n", [100_000, 20_000, 2**31 - 1])
def test_set_num_threads_refuses_absurd_counts(n: int) -> None:
    bound = _core.max_threads()
    assert bound >= 256
    before = tritondiv.num_threads()
    with pytest.raises(ValueError, match=str(bound)):
        tritondiv.set_num_threads(n)
    with pytest.raises(ValueError, match=str(bound)):
        _core.set_num_threads(n)
    assert tritondiv.num_threads() == before


def test_set_num_threads_refuses_ints_beyond_c_range() -> None:
    with pytest.raises(ValueError, match="threads"):
        tritondiv.set_num_threads(10**30)


def test_set_num_threads_accepts_the_bound_itself() -> None:
    bound = _core.max_threads()
    before = tritondiv.num_threads()
    try:
        tritondiv.set_num_threads(bound)
        assert tritondiv.num_threads() == bound
    finally:
        tritondiv.set_num_threads(before)


def test_set_num_threads_above_bound_does_not_crash_in_a_fresh_process() -> None:
    _run_isolated("c.set_num_threads(100000)", expect="ValueError")


# ---- 3. failed allocations inside OpenMP regions --------------------------------------


@_needs_real_allocator
def test_token_counts_huge_vocab_raises_memory_error() -> None:
    _run_isolated(
        "c.token_counts(np.array([0, 2]), np.array([1, 2], np.int32), 2**31 - 1)",
        expect="MemoryError",
    )


@_needs_real_allocator
def test_distinct_ids_with_a_huge_vocab_raise_memory_error() -> None:
    _run_isolated(
        "c.distinct_ngrams(np.array([0, 2]), np.array([1, 2], np.int32), 2**31 - 1, 1)",
        expect="MemoryError",
    )


def test_sizes_beyond_what_ids_can_name_are_refused() -> None:
    _run_isolated(
        "c.prune_types(np.array([0]), np.array([], np.int32), 2**62, 0)",
        expect="ValueError",
    )
    _run_isolated(
        "c.facility_location_csr(np.array([0, 0]), np.array([], np.int32), np.array([]), -1, 1)",
        expect="ValueError",
    )


def test_stochastic_greedy_with_a_denormal_epsilon() -> None:
    off = np.array([0, 1, 2, 3], np.int64)
    ty = np.array([0, 1, 0], np.int32)
    idx, gains, counts, _ = _core.balanced_greedy(
        off, ty, 2, np.arange(3, dtype=np.int64), 2, 0, 0.0, np.empty(0), 5e-324, 0
    )
    assert counts.tolist() == [1, 1] and 1 in idx.tolist() and gains.size == 2
