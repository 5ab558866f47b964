"""The analysis of an SFT experiment: score against diversity level, per strategy.

- :func:`bayes_linear_regression`: score on level, conjugate normal-inverse-gamma prior
  (weak); the slope's posterior mean with a 1σ band (:func:`regression_band`);
- :func:`pearson`: the Pearson correlation (``None`` where undefined);
- :func:`analyze`: both per strategy, and each dataset metric's Pearson r with the score.

Plain numpy; no torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "analyze",
    "bayes_linear_regression",
    "flatten_metrics",
    "pearson",
    "regression_band",
]


def bayes_linear_regression(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    *,
    prior_precision: float = 1e-3,
    a0: float = 1e-3,
    b0_scale: float = 1e-3,
) -> dict[str, Any]:
    """Bayesian linear regression ``y = intercept + slope * x + noise``.

    Conjugate normal-inverse-gamma prior on the centered data (``x - mean(x)``,
    ``y - mean(y)``): coefficients ``~ N(0, σ² (prior_precision · diag(XᵀX))⁻¹)`` (so each coefficient
    is shrunk by the same relative ``prior_precision``, whatever the spread of ``x``),
    ``σ² ~ InvGamma(a0, b0)`` with ``b0 = b0_scale · var(y)`` (so the prior is as weak
    whatever the score's units and offset). The marginal posterior of the coefficients is a
    Student t with ``2 a_n`` degrees of freedom; ``slope_sd`` is its standard deviation
    (the 1σ band). With the default weak prior the posterior mean is the least-squares
    slope divided by ``1 + prior_precision``.

    Returns
    -------
    dict
        ``slope``, ``slope_sd``, ``intercept``, ``intercept_sd``, ``dof``, ``n``, and
        ``mean``/``cov_scale`` (posterior mean vector and ``(b_n / a_n) Λ_n⁻¹``) used by
        :func:`regression_band`.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D of equal length; got {x.shape} and {y.shape}")
    n = len(x)
    if n < 2:
        raise ValueError(f"a regression needs at least 2 points; got {n}")
    # fit on centered data (the zero-mean prior then shrinks nothing but the slope, weakly)
    xm, ym = float(x.mean()), float(y.mean())
    X = np.stack([np.ones(n), x - xm], axis=1)
    yc = y - ym
    xtx = X.T @ X
    lam_n = xtx + prior_precision * np.diag(np.maximum(np.diag(xtx), 1e-12))
    mu_c = np.linalg.solve(lam_n, X.T @ yc)
    b0 = b0_scale * max(float(np.var(y)), 1e-12)
    a_n = a0 + n / 2.0
    b_n = max(b0 + 0.5 * float(yc @ yc - mu_c @ lam_n @ mu_c), 1e-300)
    dof = 2.0 * a_n
    # back to (intercept, slope) of the original x: intercept = ym + c0 - slope * xm
    T = np.array([[1.0, -xm], [0.0, 1.0]])
    mu_n = T @ mu_c + np.array([ym, 0.0])
    cov_scale = T @ ((b_n / a_n) * np.linalg.inv(lam_n)) @ T.T
    var_factor = dof / (dof - 2.0) if dof > 2 else 1.0
    sd = np.sqrt(np.diag(cov_scale) * var_factor)
    return {
        "slope": float(mu_n[1]),
        "slope_sd": float(sd[1]),
        "intercept": float(mu_n[0]),
        "intercept_sd": float(sd[0]),
        "dof": float(dof),
        "n": int(n),
        "mean": mu_n.tolist(),
        "cov_scale": cov_scale.tolist(),
    }


def regression_band(
    fit: dict[str, Any], xs: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean line and its 1σ half-width at ``xs`` for a
    :func:`bayes_linear_regression` fit."""
    xs = np.asarray(xs, dtype=np.float64)
    X = np.stack([np.ones_like(xs), xs], axis=1)
    mean = X @ np.asarray(fit["mean"])
    dof = fit["dof"]
    var_factor = dof / (dof - 2.0) if dof > 2 else 1.0
    var = np.einsum("ij,jk,ik->i", X, np.asarray(fit["cov_scale"]), X) * var_factor
    return mean, np.sqrt(var)


def pearson(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float | None:
    """Pearson correlation; ``None`` when undefined (fewer than 2 points or a constant)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return None
    xc, yc = x - x.mean(), y - y.mean()
    return float((xc @ yc) / math.sqrt(float(xc @ xc) * float(yc @ yc)))


def flatten_metrics(metrics: dict[str, Any] | None, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a nested metrics dict as ``{"response.distinct_1": value, ...}``."""
    out: dict[str, float] = {}
    for k, v in (metrics or {}).items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten_metrics(v, name + "."))
        elif isinstance(v, bool):
            continue
        elif isinstance(v, (int, float)) and math.isfinite(float(v)):
            out[name] = float(v)
    return out


def analyze(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Slope (Bayesian regression, 1σ) and Pearson r of score on level per strategy, and
    each metric's Pearson r with the score over all runs. ``runs``: dicts with
    ``strategy``, ``level``, ``score`` and optionally ``metrics`` (flat)."""
    strategies: dict[str, Any] = {}
    for s in dict.fromkeys(r["strategy"] for r in runs):
        rows = sorted((r for r in runs if r["strategy"] == s), key=lambda r: r["level"])
        lv = [r["level"] for r in rows]
        sc = [r["score"] for r in rows]
        entry: dict[str, Any] = {
            "n": len(rows),
            "levels": lv,
            "scores": sc,
            "pearson_r": pearson(lv, sc),
        }
        if len(rows) >= 2:
            entry["fit"] = bayes_linear_regression(lv, sc)
        entry["best_level"] = lv[int(np.argmax(sc))] if sc else None
        strategies[s] = entry
    names = sorted({k for r in runs for k in (r.get("metrics") or {})})
    metric_r = {}
    for m in names:
        pts = [(r["metrics"][m], r["score"]) for r in runs if m in (r.get("metrics") or {})]
        if len(pts) >= 3:
            metric_r[m] = {
                "pearson_r": pearson([p[0] for p in pts], [p[1] for p in pts]),
                "n": len(pts),
            }
    return {"strategies": strategies, "metrics": metric_r}
