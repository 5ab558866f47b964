"""The ladder end to end on real data: layout, manifests, resumability, metrics, report."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from tritondiv._io import file_sha256
from tritondiv.dataset import read_manifest, verify_dataset
from tritondiv.ladder import LADDER_FILE, level_dir, run_ladder
from tritondiv.strategies import TYPE_STRATEGIES, FeatureOptions

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]

SIZE = 200
N_LEVELS = 7


@pytest.fixture(scope="module")
def mixed(make_mixed_pool, tmp_path_factory: pytest.TempPathFactory) -> dict:
    return make_mixed_pool(tmp_path_factory.mktemp("mixed"), n_t0=1500, n_gsm=300)


def _opts(mixed: dict) -> FeatureOptions:
    return FeatureOptions(
        embeddings_instruction=str(mixed["emb"]["instruction"]),
        embeddings_response=str(mixed["emb"]["response"]),
        tagger="column:tags",
        progress=False,
    )


def test_ladder_layout_crash_resume_metrics_and_report(
    mixed: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tritondiv.ladder as ladder_mod
    from tritondiv.pool import load_pool

    pool = load_pool(mixed["pool"])
    out = tmp_path / "ladder"
    real_write = ladder_mod.write_dataset
    calls: list[str] = []
    total = len(TYPE_STRATEGIES) * N_LEVELS
    crash_at = total - 3

    def crashing(path, records, manifest, **kwargs):  # type: ignore[no-untyped-def]
        if len(calls) == crash_at:
            raise RuntimeError("simulated kill")
        calls.append(str(path))
        return real_write(path, records, manifest, **kwargs)

    monkeypatch.setattr(ladder_mod, "write_dataset", crashing)
    with pytest.raises(RuntimeError, match="simulated kill"):
        run_ladder(pool, SIZE, out, levels=N_LEVELS, options=_opts(mixed), seed=0, bleu_sample=100)
    index = json.loads((out / LADDER_FILE).read_text())
    assert index["status"] == "running"
    finished = [Path(c) for c in calls]
    assert len(finished) == crash_at
    for d in finished:
        assert verify_dataset(d)[0]
    assert not (out / "report.html").exists()

    # damage two finished levels: a changed data.jsonl and a missing manifest (partial)
    damaged = [out / level_dir("response-micro", 1), out / level_dir("instruction-macro", 2)]
    with open(damaged[0] / "data.jsonl", "a", encoding="utf-8") as fh:
        fh.write("{}\n")
    (damaged[1] / "manifest.json").unlink()
    untouched = [d for d in finished if d not in damaged]
    stamps = {d: (d / "data.jsonl").stat().st_mtime_ns for d in untouched}

    calls.clear()
    monkeypatch.setattr(
        ladder_mod,
        "write_dataset",
        lambda p, r, m, **kw: calls.append(str(p)) or real_write(p, r, m, **kw),
    )
    index = run_ladder(
        pool, SIZE, out, levels=N_LEVELS, options=_opts(mixed), seed=0, bleu_sample=100
    )
    redone = {Path(c) for c in calls}
    assert redone == ({out / level_dir("response-micro", i) for i in (4, 5, 6)} | set(damaged))
    for d in untouched:
        assert (d / "data.jsonl").stat().st_mtime_ns == stamps[d], f"{d} was rewritten"

    # the index
    assert index["status"] == "finished"
    saved = json.loads((out / LADDER_FILE).read_text())
    assert saved["pool"]["fingerprint"] == pool.fingerprint
    assert saved["size"] == SIZE and saved["strategies"] == list(TYPE_STRATEGIES)
    assert saved["levels"] == pytest.approx([i / 6 for i in range(7)])
    assert len(saved["datasets"]) == total
    records = pool.records
    for entry in saved["datasets"]:
        d = out / entry["path"]
        assert entry["path"] == f"{entry['strategy']}/level-{entry['level_index']}"
        ok, why = verify_dataset(d)
        assert ok, why
        man = read_manifest(d)
        assert man["strategy"] == entry["strategy"] and man["level_index"] == entry["level_index"]
        assert (
            man["level"] == pytest.approx(entry["level"])
            and man["size"] == SIZE
            and man["seed"] == 0
        )
        assert man["data"]["sha256"] == file_sha256(d / "data.jsonl")
        assert len(man["ids"]) == SIZE == len(set(man["ids"]))
        assert man["ids"] == [pool.ids[i] for i in man["indices"]]
        lines = (d / "data.jsonl").read_text(encoding="utf-8").splitlines()
        assert [json.loads(x) for x in lines] == [records[i] for i in man["indices"]]
        assert set(man["metrics"]["coverage"]) == set(TYPE_STRATEGIES)
        assert man["options"]["tagger"] == "column:tags"
        if entry["strategy"].endswith("-meso"):
            tags = man["tags"]
            assert 0 < tags["tags_per_sample"] <= tags["raw_tags_per_sample"], tags
            assert 0 < tags["kept_tags"] and 0 <= tags["untagged"] < man["pool"]["n_samples"]

    # coverage non-decreasing in level, for every strategy
    for s in TYPE_STRATEGIES:
        covs = [read_manifest(out / level_dir(s, i))["coverage"] for i in range(N_LEVELS)]
        assert all(a <= b for a, b in itertools.pairwise(covs)), (s, covs)

    # response-micro: token entropy of the responses rises from p = 0 to p = 1 (distinct-1
    # is checked on a larger real pool in test_strategies.py: on this small one it is
    # confounded by length, see there)
    m0 = read_manifest(out / level_dir("response-micro", 0))["metrics"]["response"]
    m1 = read_manifest(out / level_dir("response-micro", N_LEVELS - 1))["metrics"]["response"]
    assert m1["token_entropy"] > m0["token_entropy"]
    assert m1["mean_length"] > m0["mean_length"]
    assert m0["self_bleu_sample"] == 100

    # the report
    html = (out / "report.html").read_text(encoding="utf-8")
    for png in (
        "metrics_instruction.png",
        "metrics_response.png",
        "coverage.png",
        "token_band.png",
    ):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        assert png in html
    band = np.load(out / "token_counts.npz")
    assert band["band"].tolist() == [10, 500]
    assert band["counts_response"].sum() > 0


def test_ladder_refuses_another_pool_and_bad_sizes(mixed: dict, tmp_path: Path) -> None:
    from tritondiv.pool import load_pool

    pool = load_pool(mixed["pool"])
    out = tmp_path / "lad"
    run_ladder(
        pool,
        50,
        out,
        levels=2,
        strategies="random",
        options=_opts(mixed),
        report=False,
        bleu_sample=20,
    )
    with pytest.raises(ValueError, match="another ladder"):
        run_ladder(pool, 60, out, levels=2, strategies="random", options=_opts(mixed), report=False)
    changed = _opts(mixed)
    changed.hi = 400
    with pytest.raises(ValueError, match=r"options differ: hi: 500 -> 400"):
        run_ladder(pool, 50, out, levels=2, strategies="random", options=changed, report=False)
    with pytest.raises(ValueError, match="smaller --size"):
        run_ladder(pool, 10**6, tmp_path / "x", levels=2, strategies="random", options=_opts(mixed))
    # the same ladder again: nothing to redo
    again = run_ladder(
        pool, 50, out, levels=2, strategies="random", options=_opts(mixed), report=False
    )
    assert again["status"] == "finished"


def test_ladder_progress_names_each_stage(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Forced bars (progress=True) say the stage, its component and the counts; with the
    default (None) and stderr not a terminal nothing is drawn."""
    from tritondiv.pool import load_pool

    pool = load_pool(str(shared_data / "gsm8k_train.jsonl.gz"), limit=120)
    kw = {"levels": 3, "strategies": "response-micro,random", "report": False, "bleu_sample": 10}
    emb = {}
    for comp in ("instruction", "response"):
        X = np.load(shared_data / "embeddings" / f"minilm_{comp}.f16.npy", mmap_mode="r")
        emb[f"embeddings_{comp}"] = str(tmp_path / f"{comp}.npy")
        np.save(emb[f"embeddings_{comp}"], np.asarray(X[71_333 : 71_333 + 120]))
    run_ladder(pool, 20, tmp_path / "quiet", options=FeatureOptions(cache=False, **emb), **kw)
    assert capsys.readouterr().err == ""
    opts = FeatureOptions(progress=True, cache=False, **emb)
    run_ladder(pool, 20, tmp_path / "bars", options=opts, **kw)
    err = capsys.readouterr().err
    for stage in (
        "tokenize response",
        "tokenize instruction",
        "types response-micro",
        "embed response",
        "types response-macro",
        "select response-micro 3 levels",
        "select random (response) 3 levels",
        "metrics response-micro level 2/3",
        "write random on response level 3/3",
    ):
        assert stage in err, stage
    from tritondiv.ladder import select_dataset

    select_dataset(pool, "random", 0.5, 20, tmp_path / "one", options=opts, bleu_sample=10)
    err = capsys.readouterr().err
    for stage in ("select random on response level 0.5", "types response-macro", "metrics random"):
        assert stage in err, stage


def test_ladder_with_the_papers_protocol_records_it(mixed: dict, tmp_path: Path) -> None:
    """The 7 paper levels (the default), the uniform sampler, a length band and source strata:
    every manifest records them and the pool's source mix holds at every level."""
    from tritondiv.pool import load_pool

    pool = load_pool(mixed["pool"])
    opts = _opts(mixed)
    opts.sampler, opts.length_band, opts.stratify = "uniform", "5:400", "source"
    out = tmp_path / "protocol"
    index = run_ladder(
        pool, 100, out, strategies="response-micro,random", options=opts, metrics=False
    )
    assert index["levels"] == [i / 6 for i in range(7)]
    from tritondiv.strategies import Features

    feats = Features(pool, opts)
    lengths = feats.response_lengths()
    src = [Path(s).name for s in pool.source]
    for entry in index["datasets"]:
        man = read_manifest(out / entry["path"] / "manifest.json")
        idx = np.asarray(man["indices"])
        assert man["tokenizer"]["name"] == "smollm2" and man["size"] == 100
        assert man["length_band"]["band"] == [5, 400]
        assert all(5 <= lengths[i] <= 400 for i in idx)
        assert man["mean_response_tokens"] == pytest.approx(float(lengths[idx].mean()))
        strata = {x["source"]: x for x in man["stratify"]["strata"]}
        total = sum(x["candidates"] for x in strata.values())
        for name, count in man["sources"].items():
            assert count == sum(1 for i in idx if src[i] == name)
            cands = sum(x["candidates"] for s, x in strata.items() if Path(s).name == name)
            assert abs(count - 100 * cands / total) < 1
        if entry["strategy"] == "response-micro":
            assert man["sampler"] == "uniform" and man["typeless"]["rule"] == "exclude"
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "sampler: uniform" in html and "5:400" in html
