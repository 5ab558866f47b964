"""The three type families (tritondiv.families; tritondiv.types re-exports them)."""

from __future__ import annotations

import numpy as np
import pytest

from tritondiv import families, stats, types
from tritondiv.families import (
    COMPONENTS,
    TYPE_FAMILIES,
    coverage,
    default_topics,
    macro_types,
    micro_types,
    parse_band_value,
    parse_family,
    resolve_band,
)
from tritondiv.incidence import Incidence
from tritondiv.tokens import TokenCSR


def test_old_module_and_one_band_resolver() -> None:
    for name in types.__all__:
        assert getattr(types, name) is getattr(families, name), name
    assert resolve_band is stats.resolve_band and parse_band_value is stats.parse_band_value


def test_family_names() -> None:
    assert COMPONENTS == ("instruction", "response")
    assert TYPE_FAMILIES == (
        "instruction-macro",
        "instruction-meso",
        "instruction-micro",
        "response-macro",
        "response-meso",
        "response-micro",
    )
    assert parse_family("response-meso") == ("response", "meso")
    with pytest.raises(ValueError, match="type family"):
        parse_family("response-nano")


def test_band_syntax_needs_no_pool() -> None:
    assert parse_band_value("7") == 7 and parse_band_value(7) == 7
    assert parse_band_value(" 0.01X ") == "0.01X"
    for bad in ("ten", "-1", "0.5%", "x", ""):
        with pytest.raises(ValueError, match="band threshold"):
            parse_band_value(bad)
    for bad_type in (1.5, None, True):
        with pytest.raises(TypeError):
            parse_band_value(bad_type)  # type: ignore[arg-type]


def test_band_error_names_the_real_pool_size() -> None:
    assert resolve_band("0.01x", "0.5x", 1000) == (10, 500)
    with pytest.raises(ValueError, match=r"band is empty.*above.*a pool of 1,000 samples") as e:
        resolve_band("0.6x", 500, 1000)
    assert "1000000" not in str(e.value) and "1,000,000" not in str(e.value)


def _ref_micro(rows: list[list[int]], vocab: int, lo: int, hi: int) -> list[list[int]]:
    counts = np.bincount(np.array([t for r in rows for t in r], dtype=np.int64), minlength=vocab)
    return [sorted({t for t in r if lo <= counts[t] <= hi}) for r in rows]


def test_micro_types_match_a_counting_reference(rng: np.random.Generator) -> None:
    rows = [rng.integers(0, 30, rng.integers(0, 12)).tolist() for _ in range(50)]
    inc = micro_types(TokenCSR.from_lists(rows, 30), 3, 12)
    want = _ref_micro(rows, 30, 3, 12)
    got = [sorted(inc.types[inc.offsets[i] : inc.offsets[i + 1]].tolist()) for i in range(50)]
    # types are token ids (labels) or their compact codes: compare through the labels
    labels = inc.labels if inc.labels is not None else np.arange(inc.n_types)
    assert [sorted(int(labels[t]) for t in r) for r in got] == want


def test_macro_types_one_topic_per_sample() -> None:
    rng = np.random.default_rng(0)
    centers = np.eye(4, 16, dtype=np.float32)
    X = np.repeat(centers, 25, axis=0) + 0.01 * rng.standard_normal((100, 16)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    inc = macro_types(X, 4, seed=0, progress=False)
    assert inc.n_samples == 100 and inc.n_types == 4
    assert np.array_equal(inc.row_lengths(), np.ones(100))
    # each planted cluster is one topic
    for c in range(4):
        assert np.unique(inc.types[c * 25 : (c + 1) * 25]).size == 1
    assert default_topics(100) == 10 and default_topics(0) == 1
    with pytest.raises(ValueError, match="n_topics"):
        macro_types(X, 0)


def test_coverage_is_distinct_types() -> None:
    inc = Incidence.from_lists([[0, 1], [1], [], [2, 3]], n_types=5)
    assert coverage(inc, [0, 1]) == 2 and coverage(inc, []) == 0 and coverage(inc, [3, 0]) == 4
