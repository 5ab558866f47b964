"""``tritondiv experiment``: a tiny ladder end to end (the statistics: test_analysis.py,
the judges: test_judges.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tritondiv.dataset import write_dataset  # noqa: E402
from tritondiv.sft.evalset import pair_hash  # noqa: E402
from tritondiv.sft.experiment import (  # noqa: E402
    check_tokenizer,
    load_eval_set,
    read_ladder,
    run_experiment,
)
from tritondiv.sft.tiny import make_tiny_llama, synthetic_pairs  # noqa: E402
from tritondiv.sft.train import TrainConfig  # noqa: E402


def test_experiment_keeps_its_public_names() -> None:
    import tritondiv.dataset
    import tritondiv.sft.analysis
    import tritondiv.sft.experiment as experiment
    import tritondiv.sft.judges

    for name in experiment.__all__:
        assert hasattr(experiment, name), name
    for mod in (tritondiv.sft.analysis, tritondiv.sft.judges):
        for name in mod.__all__:
            assert getattr(experiment, name) is getattr(mod, name), name
    assert experiment.read_ladder is tritondiv.dataset.read_ladder


# --------------------------------------------------------------------- tiny ladder
STRATEGIES = ("response-micro", "random")
LEVELS = (0.0, 0.5, 1.0)


def _write_ladder(
    root: Path,
    pool_ins: list[str],
    pool_res: list[str],
    size: int = 12,
    strategies: tuple[str, ...] = STRATEGIES,
    extra: dict | None = None,
) -> None:
    """A ladder in the layout `tritondiv ladder` writes (datasets by write_dataset, the
    index by hand: no ladder code)."""
    datasets = []
    rng = np.random.default_rng(0)
    for s in strategies:
        for i, lv in enumerate(LEVELS):
            rel = f"{s}/level-{i}"
            idx = rng.choice(len(pool_ins), size, replace=False)
            records = [
                {"instruction": pool_ins[j], "input": "", "output": pool_res[j]} for j in idx
            ]
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
                **(extra or {}),
            }
            write_dataset(root / rel, records, man)
            datasets.append({"strategy": s, "level": lv, "level_index": i, "path": rel})
    index = {
        "pool": {"fingerprint": "abc"},
        "size": size,
        "levels": list(LEVELS),
        "strategies": list(strategies),
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
    seen = {pair_hash(i, r) for i, r in zip(pool_ins, pool_res, strict=True)}
    ev = [(i, r) for i, r in zip(ins[150:], res[150:], strict=True) if pair_hash(i, r) not in seen][
        :10
    ]
    eval_path = root / "eval.jsonl"
    eval_path.write_text(
        "".join(json.dumps({"instruction": i, "response": r}) + "\n" for i, r in ev)
    )
    return root, model, eval_path


def _cfg() -> TrainConfig:
    return TrainConfig(steps=3, batch_size=4, lr=2e-3, kernels="torch", seed=0, trainer="own")


@pytest.mark.slow
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
    assert (out / "slopes.png").stat().st_size > 1000 and res["slope_plot"] == str(
        out / "slopes.png"
    )
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


def test_ladder_names_cannot_lead_outside_the_output(tmp_path) -> None:
    ladder = tmp_path / "deep" / "er" / "ladder"
    records = [{"instruction": "q", "output": "a"}]
    write_dataset(ladder / "random" / "level-0", records, {"strategy": "random", "level": 0.0})
    out = tmp_path / "deep" / "er" / "out"
    cases = [
        ({"strategy": "../../../x", "path": "random/level-0"}, "not a safe file name"),
        ({"strategy": "random", "path": "../../../x"}, "leads outside"),
        ({"strategy": "random", "path": "/etc"}, "is absolute"),
        ({"strategy": "random", "path": "random/level-0", "level_index": "x"}, "not valid"),
    ]
    for entry, why in cases:
        index = {"datasets": [{"level": 0.0, "level_index": 0, **entry}], "status": "finished"}
        (ladder / "ladder.json").write_text(json.dumps(index))
        with pytest.raises(ValueError, match=why):
            read_ladder(ladder)
        with pytest.raises(ValueError, match=why):
            run_experiment(ladder, tmp_path / "no-model", ladder, out, _cfg(), progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deep"]
    assert sorted(p.name for p in (tmp_path / "deep" / "er").iterdir()) == ["ladder", "out"]
    assert list(out.iterdir()) == []


# ------------------------------------------------- LM judge, eval files, tokenizer check
def test_experiment_with_a_local_lm_judge(setup, tmp_path) -> None:
    root, model, eval_path = setup
    recs = [json.loads(x) for x in eval_path.read_text().splitlines()][:6]
    ev = tmp_path / "prompts.jsonl"
    # a user file: instructions, half of them with a reference output
    ev.write_text(
        "".join(
            json.dumps(
                {"instruction": r["instruction"], **({"output": r["response"]} if k % 2 else {})}
            )
            + "\n"
            for k, r in enumerate(recs)
        )
    )
    ins, refs = load_eval_set(ev)
    assert len(ins) == 6 and [r is None for r in refs] == [True, False] * 3
    res = run_experiment(
        root / "ladder",
        model,
        ev,
        tmp_path / "out",
        _cfg(),
        judge_model=model,  # the base model judges (a tiny one: any verdicts will do)
        score="lc_win_rate",
        max_new_tokens=4,
        strategies=["random"],
        progress=False,
    )
    assert res["score_kind"] == "lc_win_rate" and res["eval"]["references"] == 3
    assert res["tokenizer"]["status"] == "unrecorded"
    for r in res["runs"]:
        j = r["judge"]
        assert j["win"] + j["tie"] + j["loss"] == 6
        assert j["win_rate"] == pytest.approx((j["win"] + 0.5 * j["tie"]) / 6)
        assert r["score"] == j["lc_win_rate"] and 0.0 <= r["score"] <= 1.0
        sc = json.loads((Path(r["run"]) / "score.json").read_text())
        assert len(sc["p_first"]) == len(sc["p_second"]) == len(sc["verdicts"]) == 6
        assert sc["eval"]["tokens"] > 0  # the held-out loss of the 3 references
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "slope (x10^-2)" in summary and "| random |" in summary
    with pytest.raises(ValueError, match="needs a judge"):
        run_experiment(root / "ladder", model, ev, tmp_path / "o2", _cfg(), score="win_rate")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "ok"}\n{"instruction": 3}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl, line 2"):
        load_eval_set(bad)


def test_experiment_refuses_another_tokenizer(setup, tmp_path) -> None:
    _root, model, eval_path = setup
    from tritondiv.sft.train import load_model
    from tritondiv.tokens import tokenizer_identity

    ins, res = synthetic_pairs(200, seed=2)
    other = {"options": {"tokenizer": {"name": "x", "sha256": "0" * 64, "vocab_size": 9}}}
    _write_ladder(tmp_path / "lad", ins[:150], res[:150], strategies=("random",), extra=other)
    with pytest.raises(ValueError, match="allow-tokenizer-mismatch"):
        run_experiment(tmp_path / "lad", model, eval_path, tmp_path / "o", _cfg(), progress=False)
    got = run_experiment(
        tmp_path / "lad",
        model,
        eval_path,
        tmp_path / "o",
        _cfg(),
        allow_tokenizer_mismatch=True,
        plot=False,
        progress=False,
    )
    assert got["tokenizer"]["status"] == "mismatch"
    assert got["tokenizer"]["allow_tokenizer_mismatch"] is True
    assert len(got["tokenizer"]["mismatched"]) == 3
    assert "Tokenizer mismatch allowed" in (tmp_path / "o" / "summary.md").read_text()
    # the model's own identity matches, by sha256 or by name
    tok = load_model(model)[1]
    ident = tokenizer_identity(tok)
    ds = [{"path": "a", "manifest": {"tokenizer_identity": ident}}]
    assert check_tokenizer(ds, tok)["status"] == "match"
    ds = [{"path": "a", "manifest": {"options": {"tokenizer": ident["name"]}}}]
    assert check_tokenizer(ds, tok)["status"] == "match"
    ds = [{"path": "a", "manifest": {"options": {"tokenizer": "smollm2"}}}]
    with pytest.raises(ValueError, match="measured with the tokenizer 'smollm2'"):
        check_tokenizer(ds, tok)
