"""tritondiv.select_from / ladder_from: the same selection as select_dataset, as a Dataset."""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

import tritondiv
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
