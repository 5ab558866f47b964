"""tritondiv.select_from / ladder_from: the same selection as select_dataset, as a Dataset."""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

import tritondiv
import tritondiv.strategies
from tritondiv.api import PROVENANCE_COLUMNS, ladder_from, select_from
from tritondiv.feature_store import FeatureOptions
from tritondiv.ladder import select_dataset
from tritondiv.pool import load_pool

datasets = pytest.importorskip("datasets")

N_ROWS = 300


@pytest.fixture(scope="module")
def gsm(shared_data: Path) -> object:
    with gzip.open(shared_data / "gsm8k_train.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in itertools.islice(f, N_ROWS)]
    for i, r in enumerate(rows):
        r["row"] = i
    return datasets.Dataset.from_list(rows)


def _emb(n: int, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 16)).astype(np.float32)


def _check_rows(sel: object, ds: object) -> None:
    out = sel.to_dataset()
    idx = sel.indices
    assert idx.dtype == np.int64 and len(set(idx.tolist())) == idx.size
    assert out.column_names == [*ds.column_names, *PROVENANCE_COLUMNS]
    assert out.remove_columns(list(PROVENANCE_COLUMNS)).to_list() == ds.select(idx).to_list()
    assert out["tritondiv_index"] == idx.tolist()
    assert out["tritondiv_rank"] == list(range(idx.size))
    assert out["tritondiv_id"] == [str(sel.pool.ids[i]) for i in idx]
    assert out["row"] == idx.tolist()


@pytest.mark.parametrize(
    ("strategy", "level", "with_emb"),
    [
        ("response-micro", 0.5, False),
        ("instruction-micro", 1.0, False),
        ("kcenter", 0.5, True),
        ("random", 1.0, True),
    ],
)
def test_select_from_matches_select_dataset(
    gsm: object, tmp_path: Path, strategy: str, level: float, with_emb: bool
) -> None:
    kw: dict[str, object] = {"lo": 2, "hi": 200, "topics": 8}
    opts = dict(kw)
    emb = None
    if with_emb:
        emb = _emb(len(gsm))
        path = tmp_path / "emb.npy"
        np.save(path, emb)
        opts["embeddings_response"] = str(path)
    sel = tritondiv.select_from(gsm, strategy, level=level, size=40, seed=3, embeddings=emb, **kw)
    assert sel.indices.size == 40
    _check_rows(sel, gsm)
    man = sel.write(tmp_path / "api")
    assert man["ids"] == sel.ids and man["strategy"] == strategy
    ref = select_dataset(
        load_pool(gsm),
        strategy,
        level,
        40,
        tmp_path / "cli",
        options=FeatureOptions(**opts),
        seed=3,
        metrics=False,
    )
    assert ref["ids"] == man["ids"]
    assert ref["indices"] == sel.indices.tolist()
    assert (tmp_path / "api" / "data.jsonl").read_bytes() == (
        tmp_path / "cli" / "data.jsonl"
    ).read_bytes()
    assert man["data"]["sha256"] == ref["data"]["sha256"]


def test_ladder_from_one_pass(gsm: object) -> None:
    sels = ladder_from(gsm, "response-micro", levels=3, size=30, lo=2, hi=200)
    assert [s.selection.level for s in sels] == [0.0, 0.5, 1.0]
    assert [s.manifest["level_index"] for s in sels] == [0, 1, 2]
    ks = [s.selection.k for s in sels]
    assert ks == sorted(ks)
    for s in sels:
        _check_rows(s, gsm)
    one = select_from(gsm, "response-micro", level=0.5, size=30, lo=2, hi=200)
    assert one.indices.tolist() == sels[1].indices.tolist()


def test_list_of_dicts_keeps_fields(gsm: object) -> None:
    rows = gsm.to_list()
    sel = select_from(rows, "response-micro", size=20, lo=2, hi=200)
    out = sel.to_dataset()
    assert out["row"] == sel.indices.tolist()
    assert out["question"] == [rows[i]["question"] for i in sel.indices]


def test_unknown_option_is_a_type_error(gsm: object) -> None:
    with pytest.raises(TypeError, match=r"unknown option 'lambda_'.*tokenizer"):
        select_from(gsm, "response-micro", size=10, lambda_=1)


def test_bad_arguments(gsm: object) -> None:
    with pytest.raises(ValueError, match="level must lie in"):
        select_from(gsm, "response-micro", size=10, level=1.5)
    with pytest.raises(ValueError, match="unknown strategy"):
        select_from(gsm, "nope", size=10)
    with pytest.raises(ValueError, match="rows but the pool has"):
        select_from(gsm, "kcenter", size=10, embeddings=_emb(5))
    with pytest.raises(TypeError, match="numpy array"):
        select_from(gsm, "kcenter", size=10, embeddings=[[1.0]])


def test_embeddings_path_dict_and_array_agree(gsm: object, tmp_path: Path) -> None:
    emb = _emb(len(gsm), seed=11)
    path = tmp_path / "emb.npy"
    np.save(path, emb)
    a = select_from(gsm, "kcenter", size=25, topics=6, embeddings=emb)
    b = select_from(gsm, "kcenter", size=25, topics=6, embeddings={"response": path})
    assert a.indices.tolist() == b.indices.tolist()
    assert b.manifest["options"]["embeddings_response"] == str(path)
    with pytest.raises(ValueError, match="unknown component"):
        select_from(gsm, "kcenter", size=10, embeddings={"answer": emb})


# ---- tritondiv.select(...) and tritondiv.ladder(...): the callable modules -------------------
def test_select_and_ladder_are_callable_modules(gsm: object) -> None:
    import inspect
    import sys

    import tritondiv.ladder
    import tritondiv.select
    from tritondiv.select import select_types

    assert tritondiv.select is sys.modules["tritondiv.select"]
    assert tritondiv.select.select_types is select_types
    assert tritondiv.ladder.run_ladder is sys.modules["tritondiv.ladder"].run_ladder
    a = tritondiv.select(gsm, "response-micro", level=0.5, size=20, lo=2, hi=200)
    b = select_from(gsm, "response-micro", level=0.5, size=20, lo=2, hi=200)
    assert a.indices.tolist() == b.indices.tolist() and a.manifest["ids"] == b.manifest["ids"]
    lad = tritondiv.ladder(gsm, "response-micro", levels=[0.0, 0.5], size=20, lo=2, hi=200)
    assert lad[1].indices.tolist() == a.indices.tolist()
    # the calls' signatures are the named functions' (kept in sync)
    for module, fn in ((tritondiv.select, select_from), (tritondiv.ladder, ladder_from)):

        def shape(params: list[inspect.Parameter]) -> list[tuple[object, ...]]:
            return [(p.name, p.kind, p.default) for p in params]

        call = list(inspect.signature(type(module).__call__).parameters.values())[1:]
        assert shape(call) == shape(list(inspect.signature(fn).parameters.values()))
    assert {"select", "ladder", "select_from", "ladder_from"} <= set(tritondiv.__all__)


@pytest.mark.slow
def test_mypy_types_the_calls(tmp_path: Path) -> None:
    """A user's snippet type-checks: ``tritondiv.select(...)`` is typed (not "Module not
    callable"), a missing ``size`` is an error, the submodule's names stay importable."""
    api = pytest.importorskip("mypy.api")
    snippet = tmp_path / "user.py"
    snippet.write_text(
        "import tritondiv\n"
        "import tritondiv.select\n"
        "from tritondiv.select import select_types\n"
        "pool = [{'instruction': 'a', 'output': 'b'}]\n"
        "sel = tritondiv.select(pool, 'response-micro', level=1.0, size=10)\n"
        "reveal_type(sel.indices)\n"
        "reveal_type(tritondiv.ladder(pool, 'deita', levels=3, size=10, quality='q'))\n"
        "reveal_type(select_types)\n"
        "tritondiv.select(pool, 'response-micro', level=1.0)\n"
    )
    out, err, rc = api.run(
        [str(snippet), "--cache-dir", str(tmp_path / "cache"), "--no-error-summary"]
    )
    lines = out.splitlines()
    assert "Module not callable" not in out, out
    assert any("list[tritondiv.api.Selected]" in ln for ln in lines), out
    assert any("SelectionResult" in ln for ln in lines), out
    errors = [ln for ln in lines if ": error:" in ln]
    assert len(errors) == 1 and 'Missing named argument "size"' in errors[0], out
    assert rc == 1, err


# ---- to_dataset for every strategy -----------------------------------------------------------
@pytest.fixture(scope="module")
def gsm_tagged(gsm: object) -> object:
    rng = np.random.default_rng(4)
    words = (
        "apple river engine violin tax garden planet bread soccer poem chemistry train castle "
        "coffee doctor ocean wallet painting volcano keyboard tiger recipe election bicycle "
        "diamond forest hospital guitar pizza satellite winter museum camera library desert "
        "tennis bridge medicine rocket island"
    ).split()
    tags = [[words[i % 40], words[(i * 7 + 3) % 40]] for i in range(len(gsm))]
    return gsm.add_column("tags", tags).add_column("score", rng.random(len(gsm)).tolist())


@pytest.mark.parametrize(
    "strategy",
    [
        pytest.param(s, marks=pytest.mark.slow) if s.endswith("meso") else s  # the tag model
        for s in tritondiv.strategies.STRATEGIES
    ],
)
def test_to_dataset_round_trips_every_strategy(gsm_tagged: object, strategy: str) -> None:
    n = len(gsm_tagged)
    emb = {"instruction": _emb(n, 1), "response": _emb(n, 2)}
    extra: dict[str, object] = {"quality": "score"} if strategy == "deita" else {}
    sel = tritondiv.select(
        gsm_tagged, strategy, level=0.5, size=25, embeddings=emb, lo=2, hi=200, topics=6,
        tagger="column:tags", **extra,
    )  # fmt: skip
    out = sel.to_dataset()
    _check_rows(sel, gsm_tagged)
    assert out.column_names[: len(gsm_tagged.column_names)] == gsm_tagged.column_names
    assert sel.manifest["strategy"] == strategy and len(sel.manifest["ids"]) == 25


# ---- quality=: an array, a .npy or a field; bad inputs -----------------------------------------
def test_quality_array_npy_and_field_agree(gsm_tagged: object, tmp_path: Path) -> None:
    n = len(gsm_tagged)
    q = np.asarray(gsm_tagged["score"])
    np.save(tmp_path / "q.npy", q)
    emb = _emb(n, 3)
    kw: dict[str, object] = {"size": 30, "level": 0.7, "embeddings": emb, "topics": 6}
    picks = {}
    for name, given in (("array", q), ("npy", tmp_path / "q.npy"), ("field", "score")):
        sel = tritondiv.select(gsm_tagged, "deita", quality=given, **kw)
        picks[name] = sel.indices.tolist()
        man = sel.manifest
        assert man["quality"]["sha256"] == picks.get("sha", man["quality"]["sha256"])
        picks["sha"] = man["quality"]["sha256"]
        assert "score" not in json.dumps(man["quality"]) or name == "field"
    assert picks["array"] == picks["npy"] == picks["field"]
    assert select_from(gsm_tagged, "deita", quality=q, **kw).manifest["options"]["quality"] is None
    level0 = tritondiv.select(gsm_tagged, "deita", quality=q, **{**kw, "level": 0.0})
    assert level0.indices.tolist() == np.argsort(-q, kind="stable")[:30].tolist()


def test_bad_quality_inputs_name_the_argument(gsm_tagged: object, tmp_path: Path) -> None:
    n = len(gsm_tagged)
    kw: dict[str, object] = {"size": 10, "embeddings": _emb(n, 3), "topics": 6}
    with pytest.raises(ValueError, match=r"quality: 299 scores .* pool of 300 samples"):
        select_from(gsm_tagged, "deita", quality=np.ones(n - 1), **kw)
    bad = np.ones(n)
    bad[7] = np.nan
    with pytest.raises(ValueError, match=r"quality: 1 scores are NaN or inf \(first: sample 7\)"):
        select_from(gsm_tagged, "deita", quality=bad, **kw)
    missing = tmp_path / "nope.npy"
    with pytest.raises(FileNotFoundError, match=rf"quality \(--quality\) {missing}: no such file"):
        select_from(gsm_tagged, "deita", quality=missing, **kw)
    np.save(tmp_path / "short.npy", np.ones(3))
    with pytest.raises(ValueError, match=r"short\.npy: 3 scores"):
        select_from(gsm_tagged, "deita", quality=tmp_path / "short.npy", **kw)
    with pytest.raises(ValueError, match=r"field 'stars'.*missing in 300 of 300"):
        select_from(gsm_tagged, "deita", quality="stars", **kw)
    with pytest.raises(TypeError, match="field 'question': its values are not all numbers"):
        select_from(gsm_tagged, "deita", quality="question", **kw)
    with pytest.raises(TypeError, match="quality: expected one score per pool sample"):
        select_from(gsm_tagged, "deita", quality=1.0, **kw)
    with pytest.raises(ValueError, match=r"kcenter does not use quality.*deita"):
        select_from(gsm_tagged, "kcenter", quality=np.ones(n), **kw)


# ---- users' own inputs through the CLI and the API ---------------------------------------------
def test_quality_and_graph_through_the_cli(
    gsm_tagged: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import scipy.sparse as sp

    from tritondiv.cli import main
    from tritondiv.dataset import read_manifest

    n = len(gsm_tagged)
    pool_file = tmp_path / "pool.jsonl"
    gsm_tagged.to_json(pool_file, lines=True)
    emb, q = _emb(n, 5), np.asarray(gsm_tagged["score"])
    np.save(tmp_path / "e.npy", emb)
    np.save(tmp_path / "q.npy", q)
    rng = np.random.default_rng(0)
    G = sp.random(n, n, density=0.05, random_state=rng, format="csr")
    sp.save_npz(tmp_path / "g.npz", (G + G.T).tocsr())
    base = [
        "select", str(pool_file), "--size", "20", "--no-metrics", "--no-progress",
        "--embeddings-response", str(tmp_path / "e.npy"), "--topics", "6",
    ]  # fmt: skip
    runs = {
        "deita": ["--strategy", "deita", "--level", "1", "--quality", str(tmp_path / "q.npy")],
        "deita-field": ["--strategy", "deita", "--level", "1", "--quality", "score"],
        "fl": ["--strategy", "facility-location", "--level", "1", "--graph", str(tmp_path / "g.npz")],
        "fl-q": [
            "--strategy", "facility-location", "--level", "1", "--graph",
            str(tmp_path / "g.npz"), "--quality", "score",
        ],
    }  # fmt: skip
    mans = {}
    for name, extra in runs.items():
        assert main([*base, *extra, "--out", str(tmp_path / name)]) == 0, capsys.readouterr().err
        mans[name] = read_manifest(tmp_path / name)
    assert mans["deita"]["ids"] == mans["deita-field"]["ids"]
    # (the field went through JSON with 10 digits: same order, other bytes than q.npy)
    assert mans["deita-field"]["quality"]["sha256"] == mans["fl-q"]["quality"]["sha256"]
    assert mans["deita"]["options"]["quality"] == str(tmp_path / "q.npy")
    api = select_from(gsm_tagged, "deita", size=20, embeddings=emb, quality=q, topics=6, level=1.0)
    assert api.indices.tolist() == mans["deita"]["indices"]
    fl = select_from(
        gsm_tagged, "facility-location", size=20, embeddings=emb, topics=6, graph=tmp_path / "g.npz"
    )
    assert fl.indices.tolist() == mans["fl"]["indices"] != mans["fl-q"]["indices"]
    assert mans["fl"]["options"]["graph"] == str(tmp_path / "g.npz")
    assert main([*base, *runs["deita"][:4], "--out", str(tmp_path / "x")]) == 2
    assert "deita needs quality scores" in capsys.readouterr().err


def test_a_loaded_tokenizer_object(gsm: object) -> None:
    from tritondiv.tokens import load_tokenizer

    by_name = select_from(gsm, "response-micro", size=20, lo=2, hi=200, tokenizer="whitespace")
    tok = load_tokenizer("whitespace")
    by_obj = select_from(gsm, "response-micro", size=20, lo=2, hi=200, tokenizer=tok)
    assert by_obj.indices.tolist() == by_name.indices.tolist()
    assert by_obj.manifest["tokenizer"]["name"] == "whitespace"
    with pytest.raises(TypeError, match="tokenizer"):
        select_from(gsm, "response-micro", size=20, tokenizer=3)


def test_deita_ladder_through_the_cli_and_stratified(gsm_tagged: object, tmp_path: Path) -> None:
    from tritondiv.cli import main

    n = len(gsm_tagged)
    pool_file = tmp_path / "pool.jsonl"
    gsm_tagged.to_json(pool_file, lines=True)
    np.save(tmp_path / "e.npy", _emb(n, 6))
    out = tmp_path / "ladder"
    argv = [
        "ladder", str(pool_file), "--size", "20", "--levels", "3", "--strategies",
        "deita,facility-location", "--quality", "score", "--embeddings-response",
        str(tmp_path / "e.npy"), "--topics", "6", "--out", str(out), "--no-metrics",
        "--no-report", "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    index = json.loads((out / "ladder.json").read_text())
    assert index["options"]["quality"] == "score" and index["status"] == "finished"
    mans = [json.loads((out / d["path"] / "manifest.json").read_text()) for d in index["datasets"]]
    deita = [m for m in mans if m["strategy"] == "deita"]
    taus = [m["tau_used"] for m in deita]
    assert len(taus) == 3 and taus[0] == 1.0 and taus == sorted(taus, reverse=True)
    assert all(m["quality"]["use"] == "order" for m in deita)
    assert all(m["quality"]["use"] == "weights" for m in mans if m["strategy"] != "deita")
    # stratified by source: each source's quota, each stratum its own filter
    rows = gsm_tagged.to_list()
    for i, r in enumerate(rows):
        r["src"] = "a" if i < 100 else "b"
    two = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    for path, part in zip(two, (rows[:100], rows[100:]), strict=True):
        path.write_text("".join(json.dumps(r) + "\n" for r in part))
    sel = select_from(
        [str(p) for p in two], "deita", size=30, level=1.0, quality="score",
        embeddings=_emb(n, 6), topics=6, stratify="source",
    )  # fmt: skip
    idx = sel.indices
    assert idx.size == 30 and (idx < 100).sum() == 10 and len(set(idx.tolist())) == 30


def test_the_calls_work_on_a_fresh_import() -> None:
    """``import tritondiv`` alone: ``tritondiv.select``/``ladder`` import their submodule."""
    import subprocess
    import sys

    code = (
        "import sys, tritondiv\n"
        "assert 'tritondiv.select' not in sys.modules\n"
        "print(callable(tritondiv.select), callable(tritondiv.ladder),"
        " tritondiv.select is sys.modules['tritondiv.select'],"
        " tritondiv.select.select_types is tritondiv.select_types)\n"
    )
    root = str(Path(tritondiv.__file__).resolve().parents[1])
    out = subprocess.run(
        [sys.executable, "-c", code], cwd="/", capture_output=True, text=True, check=True,
        env={"PYTHONPATH": root, "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert out.stdout.split() == ["True"] * 4, out.stderr
