"""``tritondiv experiment``: statistics against references, and a tiny ladder end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tritondiv.sft.experiment import (  # noqa: E402
    _pair_hash,
    analyze,
    bayes_linear_regression,
    flatten_metrics,
    load_judge,
    pearson,
    read_ladder,
    reference_f1_judge,
    regression_band,
    run_experiment,
)
from tritondiv.sft.tiny import make_tiny_llama, synthetic_pairs  # noqa: E402
from tritondiv.sft.train import TrainConfig  # noqa: E402


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


def test_judges() -> None:
    assert reference_f1_judge(
        ["q", "q", "q"], ["a b c", "x", "a"], ["x", "a b c", "a"], ["a b c"] * 3
    ) == [1.0, 0.0, 0.5]
    fn = load_judge("tritondiv.sft.experiment:reference_f1_judge")
    assert fn is reference_f1_judge
    with pytest.raises(ValueError, match="module:function"):
        load_judge("no_colon")
    with pytest.raises(ValueError, match="cannot import"):
        load_judge("tritondiv.sft.experiment:nope")


# --------------------------------------------------------------------- tiny ladder
STRATEGIES = ("response-micro", "random")
LEVELS = (0.0, 0.5, 1.0)


def _write_ladder(root: Path, pool_ins: list[str], pool_res: list[str], size: int = 12) -> None:
    """A ladder in the layout `tritondiv ladder` writes (made by hand: no ladder code)."""
    datasets = []
    rng = np.random.default_rng(0)
    for s in STRATEGIES:
        for i, lv in enumerate(LEVELS):
            rel = f"{s}/level-{i}"
            d = root / rel
            d.mkdir(parents=True)
            idx = rng.choice(len(pool_ins), size, replace=False)
            with open(d / "data.jsonl", "w", encoding="utf-8") as fh:
                for j in idx:
                    fh.write(
                        json.dumps({"instruction": pool_ins[j], "input": "", "output": pool_res[j]})
                        + "\n"
                    )
            resp = [pool_res[j] for j in idx]
            man = {
                "strategy": s,
                "level": lv,
                "level_index": i,
                "size": size,
                "seed": 0,
                "ids": [str(j) for j in idx],
                "metrics": {
                    "response": {
                        "mean_length": float(np.mean([len(r) for r in resp])),
                        "distinct_1": lv,
                    }
                },
            }
            (d / "manifest.json").write_text(json.dumps(man))
            datasets.append({"strategy": s, "level": lv, "level_index": i, "path": rel})
    index = {
        "pool": {"fingerprint": "abc"},
        "size": size,
        "levels": list(LEVELS),
        "strategies": list(STRATEGIES),
        "seed": 0,
        "datasets": datasets,
        "status": "finished",
    }
    (root / "ladder.json").write_text(json.dumps(index))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("exp")
    ins, res = synthetic_pairs(200, seed=2)
    model = make_tiny_llama(root / "model", ins + res, seed=0)
    pool_ins, pool_res = ins[:150], res[:150]
    _write_ladder(root / "ladder", pool_ins, pool_res)
    seen = {_pair_hash(i, r) for i, r in zip(pool_ins, pool_res, strict=True)}
    ev = [
        (i, r) for i, r in zip(ins[150:], res[150:], strict=True) if _pair_hash(i, r) not in seen
    ][:10]
    eval_path = root / "eval.jsonl"
    eval_path.write_text(
        "".join(json.dumps({"instruction": i, "response": r}) + "\n" for i, r in ev)
    )
    return root, model, eval_path


def _cfg() -> TrainConfig:
    return TrainConfig(steps=3, batch_size=4, lr=2e-3, kernels="torch", seed=0)


def test_experiment_end_to_end_and_rerun_with_a_judge(setup) -> None:
    root, model, eval_path = setup
    out = root / "out"
    res = run_experiment(root / "ladder", model, eval_path, out, _cfg(), progress=False)
    assert len(res["runs"]) == 6
    for r in res["runs"]:
        assert r["score"] == pytest.approx(-r["eval_loss"])
        assert r["eval_perplexity"] == pytest.approx(np.exp(r["eval_loss"]))
        assert (Path(r["run"]) / "model").is_dir() and (Path(r["run"]) / "score.json").is_file()
        assert r["eval_loss"] < res["base"]["eval"]["loss"]  # fine-tuning helped on held-out data
    an = res["analysis"]
    assert set(an["strategies"]) == set(STRATEGIES)
    for e in an["strategies"].values():
        assert (
            e["levels"] == list(LEVELS)
            and np.isfinite(e["fit"]["slope"])
            and e["fit"]["slope_sd"] > 0
        )
    assert set(an["metrics"]) == {"response.mean_length", "response.distinct_1"}
    assert (out / "score_vs_level.png").stat().st_size > 1000
    summary = (out / "summary.md").read_text()
    assert "| response-micro |" in summary and "| random |" in summary
    saved = json.loads((out / "experiment.json").read_text())
    assert saved["eval"]["overlap_with_ladder"] == 0 and len(saved["runs"]) == 6
    same = {r["run"]: r["final_train_loss"] for r in res["runs"]}

    # rerun with a judge: trainings are reused, scores become win rates vs the base model
    seen: list[str] = []
    res2 = run_experiment(
        root / "ladder",
        model,
        eval_path,
        out,
        _cfg(),
        judge="tritondiv.sft.experiment:reference_f1_judge",
        max_new_tokens=6,
        progress=False,
        log=seen.append,
        strategies=["random"],
    )
    assert sum("skipped" in m for m in seen) == 3
    assert len(res2["runs"]) == 3
    for r in res2["runs"]:
        assert r["score_kind"] == "win_rate" and 0.0 <= r["score"] <= 1.0
        assert r["final_train_loss"] == same[r["run"]]
        sc = json.loads((Path(r["run"]) / "score.json").read_text())
        assert len(sc["verdicts"]) == 10 and len(sc["answers"]) == 10


def test_experiment_refuses_overlap_and_bad_inputs(setup, tmp_path) -> None:
    root, model, _ = setup
    first = json.loads(
        (root / "ladder" / "random" / "level-0" / "data.jsonl").read_text().splitlines()[0]
    )
    bad = tmp_path / "eval.jsonl"
    bad.write_text(
        json.dumps({"instruction": first["instruction"], "response": first["output"]}) + "\n"
    )
    with pytest.raises(ValueError, match="also appear in the evaluation set"):
        run_experiment(root / "ladder", model, bad, tmp_path / "o", _cfg(), progress=False)
    with pytest.raises(FileNotFoundError, match=r"ladder\.json"):
        read_ladder(tmp_path)
    with pytest.raises(ValueError, match="not in the ladder"):
        run_experiment(
            root / "ladder", model, bad, tmp_path / "o", _cfg(), strategies=["meso"], progress=False
        )


def test_cli_experiment(setup, capsys) -> None:
    import argparse

    from tritondiv.commands import experiment

    root, model, eval_path = setup
    parser = argparse.ArgumentParser(prog="tritondiv")
    experiment.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "experiment",
            str(root / "ladder"),
            "--model",
            str(model),
            "--eval",
            str(eval_path),
            "--out",
            str(root / "out"),
            "--steps",
            "3",
            "--batch-size",
            "4",
            "--lr",
            "2e-3",
            "--kernels",
            "torch",
            "--no-progress",
            "--strategies",
            "random",
            "--no-plot",
        ]
    )
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "| random |" in text and "experiment.json" in text
