"""The analysis of an SFT experiment (tritondiv.sft.analysis) against plain references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tritondiv.sft.analysis import (
    analyze,
    bayes_linear_regression,
    flatten_metrics,
    pearson,
    regression_band,
)


# ------------------------------------------------------------------------ statistics
def test_bayes_regression_tends_to_least_squares_with_a_vanishing_prior() -> None:
    x = np.array([0, 1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 1.0])
    y = np.array([60.1, 60.9, 61.5, 61.2, 62.8, 63.1, 64.9])
    fit = bayes_linear_regression(x, y, prior_precision=1e-12, a0=1e-12, b0_scale=1e-12)
    slope, intercept = np.polyfit(x, y, 1)
    assert fit["slope"] == pytest.approx(slope, rel=1e-9)
    assert fit["intercept"] == pytest.approx(intercept, rel=1e-9)
    # posterior t: scale^2 = (SSE / n) (X^T X)^-1, dof = n, sd = scale sqrt(n / (n - 2))
    n = len(x)
    X = np.stack([np.ones(n), x], 1)
    sse = float(np.sum((y - X @ np.array([intercept, slope])) ** 2))
    var = sse / n * np.linalg.inv(X.T @ X)[1, 1] * n / (n - 2)
    assert fit["slope_sd"] == pytest.approx(np.sqrt(var), rel=1e-6)
    assert fit["dof"] == pytest.approx(n)
    # the default weak prior is close to least squares too
    assert bayes_linear_regression(x, y)["slope"] == pytest.approx(slope, rel=2e-3)
    mean, sd = regression_band(fit, [0.0, 1.0])
    np.testing.assert_allclose(mean, [intercept, intercept + slope], rtol=1e-9)
    assert (sd > 0).all()


def test_bayes_regression_edge_cases() -> None:
    fit = bayes_linear_regression([0, 0.5, 1], [1.0, 2.0, 3.0])  # exactly on a line
    assert fit["slope"] == pytest.approx(2.0 / 1.001)
    noisy = bayes_linear_regression([0, 0.5, 1], [1.0, 2.6, 3.0])
    assert fit["slope_sd"] < noisy["slope_sd"] / 5
    flat = bayes_linear_regression([0, 0.5, 1], [5.0, 5.0, 5.0])
    assert flat["slope"] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="at least 2"):
        bayes_linear_regression([0.0], [1.0])
    with pytest.raises(ValueError, match="equal length"):
        bayes_linear_regression([0.0, 1.0], [1.0])


@settings(max_examples=30, deadline=None)
@given(
    y=st.lists(st.floats(-100, 100, allow_nan=False), min_size=4, max_size=7),
    c=st.floats(0.1, 10),
    shift=st.floats(-50, 50),
)
def test_property_regression_scales_with_the_score(y, c, shift) -> None:
    y = np.asarray(y)
    x = np.linspace(0, 1, len(y))
    a = bayes_linear_regression(x, y)
    b = bayes_linear_regression(x, c * y + shift)
    assert b["slope"] == pytest.approx(c * a["slope"], rel=1e-2, abs=1e-6 * (1 + abs(shift)))
    r = pearson(x, y)
    if r is not None and abs(r) > 1e-3 and abs(a["slope"]) > 1e-6:
        assert np.sign(r) == np.sign(a["slope"])


def test_pearson_and_flatten_metrics() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=20), rng.normal(size=20)
    assert pearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert pearson([1, 2, 3], [4, 4, 4]) is None and pearson([1], [2]) is None
    flat = flatten_metrics(
        {
            "response": {"distinct_1": 0.5, "n": 3, "ok": True},
            "coverage": {"m": {"fraction": 1}},
            "s": "x",
        }
    )
    assert flat == {"response.distinct_1": 0.5, "response.n": 3.0, "coverage.m.fraction": 1.0}


def test_analyze_finds_the_slopes_and_metric_correlations() -> None:
    runs = []
    for i, lv in enumerate([0.0, 0.5, 1.0]):
        runs.append(
            {"strategy": "up", "level": lv, "score": 1.0 + lv, "metrics": {"len": 10.0 + i}}
        )
        runs.append(
            {"strategy": "down", "level": lv, "score": 2.0 - 2 * lv, "metrics": {"len": 12.0 - i}}
        )
    an = analyze(runs)
    assert an["strategies"]["up"]["fit"]["slope"] == pytest.approx(1.0, rel=1e-3)
    assert an["strategies"]["down"]["fit"]["slope"] == pytest.approx(-2.0, rel=1e-3)
    assert an["strategies"]["up"]["pearson_r"] == pytest.approx(1.0)
    assert an["strategies"]["down"]["best_level"] == 0.0
    assert an["metrics"]["len"]["n"] == 6
