"""The dataset folder (tritondiv.dataset): write, verify, read back, and nothing lost.

Issue 10: a dataset selected from a pool folder of several formats is read back by every
reader. Issue 16: a failed rewrite leaves the earlier dataset intact, writers lock the
folder, a tampered dataset is refused, the output location is checked before any work,
stale temporaries of killed runs are cleaned.
"""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
from pathlib import Path
from typing import Any

import pytest

import tritondiv.dataset as dataset_mod
from tritondiv._io import file_sha256
from tritondiv.dataset import (
    DATA_FILE,
    LADDER_FILE,
    MANIFEST_FILE,
    DatasetBusyError,
    DatasetError,
    OutputDirError,
    check_output_dir,
    dataset_lock,
    find_datasets,
    read_dataset,
    read_ladder,
    read_manifest,
    verify_dataset,
    write_dataset,
)
from tritondiv.pool import PoolError, load_pool

ALPACA = [
    {"instruction": "Add 2 and 3.", "input": "", "output": "5"},
    {"instruction": "Translate", "input": "bonjour", "output": "hello"},
]
SHAREGPT = [
    {
        "id": "c1",
        "conversations": [
            {"from": "human", "value": "Hi there"},
            {"from": "gpt", "value": "Hello!"},
            {"from": "human", "value": "How are you?"},
            {"from": "gpt", "value": "Fine."},
        ],
    },
    {
        "conversations": [
            {"from": "system", "value": "be brief"},
            {"from": "human", "value": "Name a colour"},
            {"from": "gpt", "value": "Blue"},
        ]
    },
]
PROMPT_COMPLETION = [
    {"prompt": "Capital of France?", "completion": "Paris"},
    {"prompt": "2*4?", "completion": "8"},
]


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture
def mixed_pool_dir(tmp_path: Path) -> Path:
    """A pool folder of three files in three record formats."""
    folder = tmp_path / "pool"
    folder.mkdir()
    _jsonl(folder / "a_alpaca.jsonl", ALPACA)
    _jsonl(folder / "b_sharegpt.jsonl", SHAREGPT)
    _jsonl(folder / "c_prompt.jsonl", PROMPT_COMPLETION)
    return folder


def _manifest(**extra: Any) -> dict[str, Any]:
    return {"strategy": "random", "level": 0.5, "size": 3, "seed": 0, **extra}


# ------------------------------------------------------------------ issue 10, defect 1
def test_a_dataset_mixing_record_formats_is_read_back_by_every_reader(
    mixed_pool_dir: Path, tmp_path: Path
) -> None:
    from tritondiv.ladder import select_dataset
    from tritondiv.metrics import dataset_file_metrics
    from tritondiv.sft.data import load_pairs

    pool = load_pool(mixed_pool_dir)
    assert len(pool) == 6
    out = tmp_path / "ds"
    man = select_dataset(
        pool,
        "random",
        1.0,
        6,
        out,
        metrics=False,
        pool_info={"fingerprint": pool.fingerprint, "format": "auto", "source": "pool"},
    )
    assert man["data"]["records"] == 6
    order = man["indices"]
    assert sorted(order) == list(range(6))
    lines = (out / DATA_FILE).read_text(encoding="utf-8").splitlines()
    kinds = {k for x in lines for k in json.loads(x)}
    assert {"output", "conversations", "completion"} <= kinds  # the file really mixes formats
    want_ins = [pool.instruction[i] for i in order]
    want_res = [pool.response[i] for i in order]
    assert "Hi there\n\nHow are you?" in want_ins and "Translate\nbonjour" in want_ins

    ds = read_dataset(out)
    assert ds.manifest is not None and ds.manifest["strategy"] == "random"
    assert ds.data_file == out / DATA_FILE
    assert list(ds.pool.instruction) == want_ins and list(ds.pool.response) == want_res
    assert ds.records == [json.loads(x) for x in lines]
    assert len(ds) == 6
    # the data file itself, with its manifest beside it
    assert list(read_dataset(out / DATA_FILE).pool.response) == want_res

    assert load_pairs(out) == (want_ins, want_res)
    assert load_pairs(out / DATA_FILE) == (want_ins, want_res)

    res = dataset_file_metrics(out, embed=False, bleu_sample=None)
    assert res["n"] == 6 and res["strategy"] == "random"
    assert res["instruction"]["n"] == 6
    assert res["response"]["mean_chars"] == pytest.approx(
        sum(len(t) for t in want_res) / len(want_res)
    )


def test_read_dataset_names_the_bad_record(tmp_path: Path) -> None:
    d = tmp_path / "ds"
    write_dataset(d, [*ALPACA, {"instruction": "q"}], _manifest())
    with pytest.raises(PoolError, match=r"data\.jsonl.*line 3"):
        read_dataset(d)
    with pytest.raises(FileNotFoundError, match=r"holds no data\.jsonl"):
        read_dataset(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_dataset(tmp_path / "nope")


def test_read_dataset_without_manifest_and_with_limit(tmp_path: Path) -> None:
    d = tmp_path / "bare"
    d.mkdir()
    _jsonl(d / DATA_FILE, ALPACA + PROMPT_COMPLETION)
    ds = read_dataset(d)
    assert ds.manifest is None
    assert list(ds.pool.instruction) == [
        "Add 2 and 3.",
        "Translate\nbonjour",
        *(r["prompt"] for r in PROMPT_COMPLETION),
    ]
    assert len(read_dataset(d, limit=3)) == 3


def test_read_ladder_lists_datasets_in_index_order(tmp_path: Path) -> None:
    entries = []
    for s in ("b", "a"):
        for i, lv in enumerate((0.0, 1.0)):
            rel = f"{s}/level-{i}"
            write_dataset(tmp_path / rel, ALPACA, _manifest(strategy=s, level=lv, level_index=i))
            entries.append({"strategy": s, "level": lv, "level_index": i, "path": rel})
    (tmp_path / LADDER_FILE).write_text(json.dumps({"datasets": entries, "size": 2}))
    index, datasets = read_ladder(tmp_path)
    assert index["size"] == 2
    assert [(d["strategy"], d["level_index"]) for d in datasets] == [
        ("b", 0),
        ("b", 1),
        ("a", 0),
        ("a", 1),
    ]
    assert datasets[1]["path"] == tmp_path / "b/level-1"
    assert datasets[1]["manifest"]["level"] == 1.0
    assert [p.relative_to(tmp_path).as_posix() for p, _m in find_datasets(tmp_path)] == [
        "a/level-0",
        "a/level-1",
        "b/level-0",
        "b/level-1",
    ]
    # an unfinished dataset: an error, or skipped on request
    (tmp_path / "a/level-1" / MANIFEST_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="rerun `tritondiv ladder`"):
        read_ladder(tmp_path)
    assert len(read_ladder(tmp_path, missing="skip")[1]) == 3
    with pytest.raises(FileNotFoundError, match=r"ladder\.json"):
        read_ladder(tmp_path / "a")
    (tmp_path / LADDER_FILE).write_text(json.dumps({"datasets": [], "status": "running"}))
    with pytest.raises(ValueError, match="lists no datasets"):
        read_ladder(tmp_path)
