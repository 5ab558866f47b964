"""``tritondiv experiment``: fine-tune on every dataset of a ladder and analyse the scores.

For each ``(strategy, level)`` dataset of a ladder (its index, read by
:func:`tritondiv.dataset.read_ladder`), the same
model is fine-tuned with the same configuration and seed (:func:`tritondiv.sft.train.train`),
then scored on a fixed evaluation set that shares no sample with the ladder:

- by default the **held-out loss** of the evaluation set's reference responses (mean
  response-token negative log-likelihood; ``score = -loss``, higher is better; the
  perplexity is recorded too);
- with a **judge** -- a local causal LM (``judge_model``, :class:`LMJudge`: both answers in
  both orders, position-swapped) or a hook ``"module:function"`` -- the **pairwise win
  rate** against a reference answer set: each model answers every evaluation instruction
  (greedy decoding), ``judge(instructions, candidates, baselines, references)`` returns
  one value per sample in ``[0, 1]`` (1 win, 0.5 tie, 0 loss). The baseline answers are the
  evaluation set's reference outputs (the base model's answers where a sample has none).
  Every run records win / tie / loss, the win rate (their mean) and the
  **length-controlled win rate** (:func:`length_controlled_win_rate`, AlpacaEval 2.0's
  LC); ``score`` is one of them (``score="win_rate"`` by default, or ``"lc_win_rate"``).
  :func:`reference_f1_judge` is an offline example judge (:mod:`tritondiv.sft.judges`).

The evaluation set is a held-out split carved from the pool (any pool format), or a
``.jsonl`` file of ``instruction`` records with an optional reference ``output``
(:func:`load_eval_set`); it must share no sample with the ladder. The ladder's datasets
must have been measured with the model's tokenizer where their manifests record one
(``options.tokenizer`` / ``tokenizer_identity``; :func:`check_tokenizer`), unless
``allow_tokenizer_mismatch`` (the result records it).

Analysis, per strategy: a **Bayesian linear regression** of score on diversity level
(:func:`bayes_linear_regression`: conjugate normal-inverse-gamma prior, weak; the slope's
posterior mean with a 1σ band) and the **Pearson correlation** of score and level; per
diversity metric of the dataset manifests, its Pearson correlation with the score over
every dataset (:mod:`tritondiv.sft.analysis`). Outputs in ``OUT``::

    OUT/runs/<strategy>/level-<i>/     each fine-tuning run (tritondiv sft layout) + score.json
    OUT/experiment.json                the manifest: inputs, config, every score, the analysis
    OUT/summary.md                     the slope table (slope x10^-2 ± 1σ) and the metric correlations
    OUT/score_vs_level.png             score against level per strategy, fit and 1σ band
    OUT/slopes.png                     the paper's form: slope x10^-2 per strategy (±1σ) and
                                       each diversity metric's Pearson r with the score
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from tritondiv._io import atomic_write, file_sha256, safe_join, write_json_atomic
from tritondiv.dataset import level_dir, package_versions, read_ladder
from tritondiv.sft.analysis import (
    analyze,
    bayes_linear_regression,
    flatten_metrics,
    pearson,
    regression_band,
)
from tritondiv.sft.evalset import check_tokenizer, load_eval_set, pair_hash
from tritondiv.sft.judges import (
    JUDGE_TEMPLATE,
    Judge,
    LMJudge,
    PairwiseResult,
    length_controlled_win_rate,
    load_judge,
    reference_f1_judge,
    win_tie_loss,
)

__all__ = [
    "JUDGE_TEMPLATE",
    "Judge",
    "LMJudge",
    "PairwiseResult",
    "analyze",
    "bayes_linear_regression",
    "check_tokenizer",
    "flatten_metrics",
    "length_controlled_win_rate",
    "load_eval_set",
    "load_judge",
    "pearson",
    "read_ladder",
    "reference_f1_judge",
    "regression_band",
    "run_experiment",
    "summary_table",
    "win_tie_loss",
]


def _generate(
    model: Any,
    tokenizer: Any,
    instructions: Sequence[str],
    *,
    template: str,
    max_new_tokens: int,
    batch_size: int,
) -> list[str]:
    import torch

    from tritondiv.sft.data import prompt_texts

    prompts, _ = prompt_texts(tokenizer, instructions, [""] * len(instructions), template)
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    device = next(model.parameters()).device
    model.eval()
    outs: list[str] = []
    try:
        for s in range(0, len(prompts), batch_size):
            chunk = prompts[s : s + batch_size]
            chat = bool(getattr(tokenizer, "chat_template", None)) and template != "plain"
            enc = tokenizer(
                chunk, return_tensors="pt", padding=True, add_special_tokens=not chat
            ).to(device)
            with torch.no_grad():
                gen = model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=tokenizer.pad_token_id,
                )
            outs.extend(
                tokenizer.batch_decode(
                    gen[:, enc["input_ids"].shape[1] :], skip_special_tokens=True
                )
            )
    finally:
        tokenizer.padding_side = side
    return [o.strip() for o in outs]


# ----------------------------------------------------------------------------- the run
def run_experiment(
    ladder_dir: str | os.PathLike[str],
    model_path: str | os.PathLike[str],
    eval_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    config: Any = None,
    *,
    gguf_file: str | None = None,
    judge: str | Judge | None = None,
    judge_model: str | os.PathLike[str] | None = None,
    score: str = "auto",
    allow_tokenizer_mismatch: bool = False,
    max_new_tokens: int = 128,
    eval_batch_size: int = 8,
    eval_limit: int | None = None,
    strategies: Sequence[str] | None = None,
    allow_overlap: bool = False,
    plot: bool = True,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Fine-tune on every dataset of the ladder, score each model, analyse; see the module
    docstring. Finished runs and scores are reused on a rerun (resumable).

    Parameters
    ----------
    ladder_dir : path
        A ladder folder (written by ``tritondiv ladder``).
    model_path : path
        The base model (local folder, or a ``.gguf`` file / ``gguf_file``).
    eval_path : path
        Evaluation set (:func:`load_eval_set`: any pool format, or instruction records with
        an optional reference ``output``); must share no sample with the ladder's datasets
        unless ``allow_overlap``.
    out_dir : path
        Output folder.
    config : TrainConfig
        The fine-tuning configuration, identical for every dataset.
    judge : "module:function" or callable, optional
        Pairwise judge hook; without a judge the score is the negative held-out loss.
    judge_model : path, optional
        A local causal LM folder for :class:`LMJudge` (instead of ``judge``).
    score : str
        ``"auto"`` (``"win_rate"`` with a judge, else ``"loss"``), ``"loss"``,
        ``"win_rate"`` or ``"lc_win_rate"``.
    allow_tokenizer_mismatch : bool
        Do not refuse a ladder measured with another tokenizer (:func:`check_tokenizer`).
    eval_limit : int, optional
        Use the first ``eval_limit`` evaluation samples.
    strategies : list of str, optional
        Only these strategies of the ladder.
    """
    import torch

    from tritondiv.sft.data import encode_pairs, load_pairs
    from tritondiv.sft.train import TrainConfig, evaluate_loss, load_model, train

    say = log or (lambda _m: None)
    cfg = config or TrainConfig()
    cfg.check()
    if judge is not None and judge_model is not None:
        raise ValueError("pass judge or judge_model, not both")
    has_judge = judge is not None or judge_model is not None
    if score not in ("auto", "loss", "win_rate", "lc_win_rate"):
        raise ValueError(f"score must be auto, loss, win_rate or lc_win_rate; got {score!r}")
    score_kind = ("win_rate" if has_judge else "loss") if score == "auto" else score
    if score_kind != "loss" and not has_judge:
        raise ValueError(f"score={score_kind!r} needs a judge (judge or judge_model)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    index, datasets = read_ladder(ladder_dir)
    if strategies:
        unknown = sorted(set(strategies) - {d["strategy"] for d in datasets})
        if unknown:
            raise ValueError(
                f"strategies {unknown} are not in the ladder ({sorted({d['strategy'] for d in datasets})})"
            )
        datasets = [d for d in datasets if d["strategy"] in set(strategies)]
    eval_ins, eval_refs = load_eval_set(eval_path)
    if eval_limit is not None:
        eval_ins, eval_refs = eval_ins[:eval_limit], eval_refs[:eval_limit]
    if not eval_ins:
        raise ValueError(f"evaluation set {eval_path} has no samples")
    with_ref = [k for k, r in enumerate(eval_refs) if r is not None]
    if not with_ref and score_kind == "loss":
        raise ValueError(
            f"evaluation set {eval_path} has no reference outputs: the held-out loss needs "
            "them; pass a judge (--judge-model) to score by win rate"
        )
    ref_ins = [eval_ins[k] for k in with_ref]
    ref_res = [str(eval_refs[k]) for k in with_ref]
    eval_hashes = {pair_hash(i, r) for i, r in zip(ref_ins, ref_res, strict=True)}
    eval_instr = {i.strip() for i in eval_ins}
    overlap = 0
    for d in datasets:
        ins, res = load_pairs(d["path"])
        overlap += sum(
            1
            for i, r in zip(ins, res, strict=True)
            if i.strip() in eval_instr and (pair_hash(i, r) in eval_hashes or not eval_hashes)
        )
    if overlap and not allow_overlap:
        raise ValueError(
            f"{overlap} samples of the ladder's datasets also appear in the evaluation set {eval_path}; "
            "carve the evaluation split out of the data before building the pool (or pass --allow-overlap)"
        )
    eval_sha = file_sha256(Path(eval_path)) if Path(eval_path).is_file() else str(eval_path)

    # the base model: its tokenizer checked against the ladder's, its eval loss, and (with
    # a judge, for samples without a reference) the baseline answers
    base_model, tokenizer = load_model(model_path, gguf_file=gguf_file, dtype=cfg.dtype)
    tok_check = check_tokenizer(
        datasets, tokenizer, index=index, allow_mismatch=allow_tokenizer_mismatch
    )
    if tok_check["status"] == "mismatch":
        say(f"tokenizer mismatch allowed: {len(tok_check['mismatched'])} manifest(s) differ")
    judge_fn: Judge | None
    if judge_model is not None:
        judge_fn = LMJudge(judge_model, batch_size=eval_batch_size)
        judge_name: str | None = f"lm:{judge_model}"
    else:
        judge_fn = load_judge(judge) if isinstance(judge, str) else judge
        judge_name = judge if isinstance(judge, str) else getattr(judge, "__name__", None)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    base_model.to(device)
    eval_data = encode_pairs(
        tokenizer, ref_ins, ref_res, max_length=cfg.max_length, template=cfg.template
    )
    base_path = out / "base_score.json"
    base_key = {
        "model": str(model_path),
        "eval_sha256": eval_sha,
        "eval_n": len(eval_ins),
        "response_tokens": eval_data.n_response_tokens,
        "references": len(with_ref),
        "max_new_tokens": max_new_tokens,
    }
    base = json.loads(base_path.read_text(encoding="utf-8")) if base_path.is_file() else {}
    changed = False
    if base.get("key") != base_key:
        base = {"key": base_key}
    if "eval" not in base:
        base["eval"] = (
            evaluate_loss(
                base_model, eval_data, batch_size=eval_batch_size, chunk_size=cfg.chunk_size
            )
            if len(eval_data)
            else None
        )
        changed = True
    if judge_fn is not None and "answers" not in base and len(with_ref) < len(eval_ins):
        base["answers"] = _generate(
            base_model,
            tokenizer,
            eval_ins,
            template=cfg.template,
            max_new_tokens=max_new_tokens,
            batch_size=eval_batch_size,
        )
        changed = True
    if changed:
        write_json_atomic(base_path, base)
    del base_model
    baselines: list[str] = []
    if judge_fn is not None:
        base_answers = base.get("answers") or []
        baselines = [r if r is not None else base_answers[k] for k, r in enumerate(eval_refs)]

    runs: list[dict[str, Any]] = []
    for k, d in enumerate(datasets):
        rel = level_dir(d["strategy"], d["level_index"])  # a safe name (read_ladder checks)
        run_dir = safe_join(out, "runs", rel)
        say(f"[{k + 1}/{len(datasets)}] {rel} (level {d['level']:.3f})")
        t0 = time.perf_counter()
        man = train(
            model_path, d["path"], run_dir, cfg, gguf_file=gguf_file, progress=progress, log=say
        )
        score_path = run_dir / "score.json"
        key = {
            **base_key,
            "eval_sha256": eval_sha,
            "judge": judge_name,
            "score": score_kind,
            "train_seconds": man["seconds"],
        }
        sc = json.loads(score_path.read_text(encoding="utf-8")) if score_path.is_file() else None
        if sc is None or sc.get("key") != key:
            model, _tok = load_model(run_dir / "model", dtype=cfg.dtype)
            model.to(device)
            ev = (
                evaluate_loss(
                    model, eval_data, batch_size=eval_batch_size, chunk_size=cfg.chunk_size
                )
                if len(eval_data)
                else None
            )
            sc = {
                "key": key,
                "eval": ev,
                "score": -ev["loss"] if ev else None,
                "score_kind": "neg_eval_loss",
            }
            if judge_fn is not None:
                answers = _generate(
                    model,
                    tokenizer,
                    eval_ins,
                    template=cfg.template,
                    max_new_tokens=max_new_tokens,
                    batch_size=eval_batch_size,
                )
                refs_for_hook = [r if r is not None else "" for r in eval_refs]
                extra: dict[str, Any] = {}
                if isinstance(judge_fn, LMJudge):
                    pw = judge_fn.compare(eval_ins, answers, baselines)
                    verdicts = [float(v) for v in pw.verdict]
                    extra = {
                        "p_first": pw.p_first.tolist(),
                        "p_second": pw.p_second.tolist(),
                    }
                else:
                    verdicts = [
                        float(v) for v in judge_fn(eval_ins, answers, baselines, refs_for_hook)
                    ]
                if len(verdicts) != len(eval_ins) or any(not 0.0 <= v <= 1.0 for v in verdicts):
                    raise ValueError(
                        f"judge {judge_name!r} must return one value in [0, 1] per sample"
                    )
                lc = length_controlled_win_rate(
                    verdicts, [len(a) for a in answers], [len(b) for b in baselines]
                )
                judged = {
                    **win_tie_loss(verdicts),
                    "win_rate": lc["win_rate"],
                    "lc_win_rate": lc["lc_win_rate"],
                    "length_fit": lc,
                }
                kind = "lc_win_rate" if score_kind == "lc_win_rate" else "win_rate"
                sc.update(
                    score=judged[kind],
                    score_kind=kind,
                    judge=judged,
                    verdicts=verdicts,
                    answers=answers,
                    **extra,
                )
            del model
            write_json_atomic(score_path, sc)
        dman = d["manifest"]
        runs.append(
            {
                "strategy": d["strategy"],
                "level": d["level"],
                "level_index": d["level_index"],
                "dataset": str(d["path"]),
                "dataset_size": dman.get("size"),
                "run": str(run_dir),
                "score": sc["score"],
                "score_kind": sc["score_kind"],
                "eval_loss": sc["eval"]["loss"] if sc["eval"] else None,
                "eval_perplexity": sc["eval"]["perplexity"] if sc["eval"] else None,
                "judge": {k: v for k, v in (sc.get("judge") or {}).items() if k != "length_fit"}
                or None,
                "final_train_loss": man["losses"][-1],
                "train_seconds": man["seconds"],
                "tokens_per_second": man["tokens_per_second"],
                "metrics": flatten_metrics(dman.get("metrics")),
                "wall_seconds": round(time.perf_counter() - t0, 3),
            }
        )
    analysis = analyze(runs)
    result: dict[str, Any] = {
        "ladder": {
            "dir": str(ladder_dir),
            "pool": index.get("pool"),
            "size": index.get("size"),
            "levels": index.get("levels"),
            "strategies": sorted({r["strategy"] for r in runs}),
        },
        "model": {"path": str(model_path), "gguf_file": gguf_file},
        "eval": {
            "path": str(eval_path),
            "samples": len(eval_ins),
            "references": len(with_ref),
            "response_tokens": eval_data.n_response_tokens,
            "overlap_with_ladder": overlap,
        },
        "score": (
            ("length-controlled win rate" if score_kind == "lc_win_rate" else "win rate")
            + " against the reference answers, judge "
            + str(judge_name)
        )
        if judge_fn
        else "negative mean response-token NLL of the evaluation references (higher is better)",
        "score_kind": score_kind,
        "judge": judge_name,
        "tokenizer": tok_check,
        "base": {"eval": base["eval"]},
        "config": asdict(cfg),
        "runs": runs,
        "analysis": analysis,
        "seconds": round(time.perf_counter() - t_start, 3),
        "versions": _versions(),
    }
    if plot:
        result["plot"] = _plot(runs, analysis, out / "score_vs_level.png", result["score"])
        result["slope_plot"] = _plot_slopes(analysis, out / "slopes.png")
    with atomic_write(out / "summary.md", "w", encoding="utf-8") as fh:
        fh.write(summary_table(result))
    write_json_atomic(out / "experiment.json", result)
    return result


def _versions() -> dict[str, str | None]:
    return package_versions(("tritondiv", "torch", "transformers", "triton", "tokenizers", "numpy"))


def _fmt(v: float | None, spec: str = ".3f") -> str:
    return "n/a" if v is None else format(v, spec)


def summary_table(result: dict[str, Any]) -> str:
    """Markdown: the slope table (one row per strategy) and the metric correlations."""
    an = result["analysis"]
    base_eval = (result.get("base") or {}).get("eval")
    lines = [
        f"Score: {result['score']}."
        + (f" Base model: eval loss {base_eval['loss']:.4f}." if base_eval else ""),
        "",
        "| strategy | slope (x10^-2) | ±1σ (x10^-2) | Pearson r | score @ min level "
        "| score @ max level | best level |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s, e in an["strategies"].items():
        fit = e.get("fit") or {}
        slope = fit.get("slope")
        sd = fit.get("slope_sd")
        lines.append(
            f"| {s} | {_fmt(None if slope is None else 100 * slope, '.2f')} | "
            f"{_fmt(None if sd is None else 100 * sd, '.2f')} | {_fmt(e['pearson_r'])} | "
            f"{e['scores'][0]:.4f} | {e['scores'][-1]:.4f} | {_fmt(e['best_level'])} |"
        )
    if result.get("tokenizer", {}).get("status") == "mismatch":
        lines += ["", "Tokenizer mismatch allowed (--allow-tokenizer-mismatch)."]
    if an["metrics"]:
        lines += [
            "",
            "| diversity metric | Pearson r with score | datasets |",
            "|---|---:|---:|",
        ]
        ranked = sorted(an["metrics"].items(), key=lambda kv: -abs(kv[1]["pearson_r"] or 0.0))
        lines += [f"| {m} | {_fmt(v['pearson_r'])} | {v['n']} |" for m, v in ranked]
    return "\n".join(lines) + "\n"


def _plot(
    runs: Sequence[dict[str, Any]], analysis: dict[str, Any], path: Path, ylabel: str
) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - the report extra is optional
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs = np.linspace(0.0, 1.0, 101)
    for s, e in analysis["strategies"].items():
        (pts,) = ax.plot(e["levels"], e["scores"], "o", label=s)
        if "fit" in e:
            mean, sd = regression_band(e["fit"], xs)
            ax.plot(xs, mean, "-", color=pts.get_color(), lw=1)
            ax.fill_between(xs, mean - sd, mean + sd, color=pts.get_color(), alpha=0.15)
    ax.set_xlabel("diversity level")
    ax.set_ylabel("score" if len(ylabel) > 40 else ylabel)
    ax.set_title("score vs diversity level (fit ± 1σ)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110)
    plt.close(fig)
    return str(path)


def _plot_slopes(analysis: dict[str, Any], path: Path) -> str | None:
    """Slope x10^-2 per strategy with 1σ error bars, and each diversity metric's Pearson r
    with the score (the paper's two panels)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - the report extra is optional
        return None
    fits = [(s, e["fit"]) for s, e in analysis["strategies"].items() if e.get("fit")]
    metrics = [
        (m, v["pearson_r"]) for m, v in analysis["metrics"].items() if v["pearson_r"] is not None
    ]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, max(3.5, 0.35 * len(metrics) + 1.5)))
    if fits:
        ys = np.arange(len(fits))
        ax1.barh(
            ys,
            [100 * f["slope"] for _, f in fits],
            xerr=[100 * f["slope_sd"] for _, f in fits],
            capsize=3,
        )
        ax1.set_yticks(ys, [s for s, _ in fits])
    ax1.axvline(0.0, color="k", lw=0.8)
    ax1.set_xlabel("slope of score on diversity level (x10^-2, ±1σ)")
    ax1.set_title("per strategy")
    if metrics:
        ranked = sorted(metrics, key=lambda kv: abs(kv[1]))
        ys = np.arange(len(ranked))
        ax2.barh(ys, [r for _, r in ranked])
        ax2.set_yticks(ys, [m for m, _ in ranked], fontsize=7)
    ax2.axvline(0.0, color="k", lw=0.8)
    ax2.set_xlim(-1.0, 1.0)
    ax2.set_xlabel("Pearson r with the score")
    ax2.set_title("per diversity metric")
    fig.tight_layout()
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110)
    plt.close(fig)
    return str(path)
