"""Pool input defects (issue 16), a regression test each: link loops and broken links in
pool folders, dictionary-encoded parquet columns, empty DatasetDict splits, lone surrogates,
outsized texts."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tritondiv.pool import DEFAULT_MAX_TEXT_CHARS, PoolError, SkippedRecord, load_pool

ROWS = [
    {"prompt": "one", "completion": "1"},
    {"prompt": "two", "completion": "2"},
]


def _jsonl(path: Path, rows: list[Any], ensure_ascii: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=ensure_ascii) + "\n" for r in rows))
    return path


# ---- 1. link loops: each folder walked once, each file read once ------------------------


def test_link_loops_read_each_file_once(tmp_path: Path) -> None:
    root = tmp_path / "pool"
    _jsonl(root / "a.jsonl", ROWS)
    _jsonl(root / "sub" / "b.jsonl", ROWS[:1])
    os.symlink(root, root / "loop")  # a link to its own folder
    os.symlink("..", root / "sub" / "up")  # a second loop, through the parent
    os.symlink("a.jsonl", root / "z_same.jsonl")  # a second name for one file
    os.symlink("..", root / "up")  # a loop through the folder above the pool
    _jsonl(tmp_path / "outside.jsonl", ROWS)  # ... which is not part of the pool
    pool = load_pool(root)
    assert pool.ids == ["a.jsonl:0", "a.jsonl:1", "sub/b.jsonl:0"]
    assert pool.skipped == []


def test_link_to_a_folder_outside_is_followed(tmp_path: Path) -> None:
    _jsonl(tmp_path / "elsewhere" / "c.jsonl", ROWS)
    (tmp_path / "pool").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "pool" / "linked")
    assert load_pool(tmp_path / "pool").ids == ["linked/c.jsonl:0", "linked/c.jsonl:1"]


# ---- 2. broken links: a PoolError naming the link and its target -----------------------


def test_broken_link_names_link_and_target(tmp_path: Path) -> None:
    root = tmp_path / "pool"
    _jsonl(root / "a.jsonl", ROWS)
    os.symlink("gone.jsonl", root / "b.jsonl")
    with pytest.raises(PoolError, match="broken symbolic link") as err:
        load_pool(root)
    assert err.value.path == str(root / "b.jsonl") and "'gone.jsonl'" in str(err.value)
    with pytest.raises(PoolError, match=r"broken symbolic link.*'gone\.jsonl'"):
        load_pool(root / "b.jsonl")
    os.symlink("b.jsonl", root / "c.jsonl")  # a link to a link
    os.symlink("self.jsonl", root / "self.jsonl")  # a link to itself
    with pytest.raises(PoolError, match="broken symbolic link"):
        load_pool(root / "self.jsonl")
    (root / "b.jsonl").unlink()
    (root / "c.jsonl").unlink()
    (root / "self.jsonl").unlink()
    os.symlink("nowhere", root / "notes")  # no pool suffix: ignored like other files
    assert len(load_pool(root)) == 2


def test_unreadable_file_is_a_pool_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _jsonl(tmp_path / "a.jsonl", ROWS)

    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(PoolError, match="cannot be read \\(Permission denied\\)") as err:
        load_pool(path)
    assert err.value.path == str(path)


# ---- 3. dictionary-encoded (pandas category) parquet columns ----------------------------


def test_dictionary_encoded_parquet_columns(tmp_path: Path) -> None:
    table = pa.table(
        {
            "prompt": pa.array(["one", "two", "one"]).dictionary_encode(),
            "completion": pa.array(["1", "2", "1"]).dictionary_encode(),
            "id": pa.array(["x", "y", "z"]).dictionary_encode(),
        }
    )
    path = tmp_path / "cat.parquet"
    pq.write_table(table, path)
    assert pa.types.is_dictionary(pq.read_table(path).schema.field("prompt").type)
    pool = load_pool(path)
    assert (pool.ids, pool.instruction, pool.response) == (
        ["x", "y", "z"],
        ["one", "two", "one"],
        ["1", "2", "1"],
    )
    assert pool.records[1] == {"prompt": "two", "completion": "2", "id": "y"}


def test_pandas_category_columns(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"instruction": ["a", "b"], "input": ["", "c"], "output": ["x", "x"]})
    frame = frame.astype("category")
    frame.to_parquet(tmp_path / "p.parquet")
    pool = load_pool(tmp_path / "p.parquet")
    assert (pool.instruction, pool.response) == (["a", "b\nc"], ["x", "x"])


# ---- 4. DatasetDict folders with an empty split ------------------------------------------


def test_dataset_dict_with_an_empty_split(tmp_path: Path) -> None:
    import datasets

    dd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list(ROWS),
            "test": datasets.Dataset.from_list([]),
        }
    )
    dd.save_to_disk(str(tmp_path / "dd"))
    pool = load_pool(tmp_path / "dd")
    assert pool.ids == ["dd/train:0", "dd/train:1"]
    assert pool.skipped == [
        SkippedRecord(str(tmp_path / "dd" / "test"), "split", "the split holds no rows (skipped)")
    ]
    empty = datasets.DatasetDict({"a": datasets.Dataset.from_list([])})
    empty["b"] = datasets.Dataset.from_list([])
    empty.save_to_disk(str(tmp_path / "empty"))
    with pytest.raises(PoolError, match=r"every split is empty \('a', 'b'\)") as err:
        load_pool(tmp_path / "empty")
    assert err.value.path == str(tmp_path / "empty")
    datasets.Dataset.from_list([]).save_to_disk(str(tmp_path / "one"))
    with pytest.raises(PoolError, match="holds no rows"):
        load_pool(tmp_path / "one")


# ---- 5. lone surrogates: caught at load time, with file, line and field ------------------


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"prompt": "bad \ud800", "completion": "1"}, "prompt"),
        ({"prompt": "p", "completion": "\udfff"}, "completion"),
        ({"instruction": "i", "input": "x\ud800", "output": "o"}, "input"),
        ({"id": "\ud800", "prompt": "p", "completion": "c"}, "id"),
        (
            {
                "conversations": [
                    {"from": "human", "value": "q\ud800"},
                    {"from": "gpt", "value": "a"},
                ]
            },
            "conversations[0].value",
        ),
    ],
)
def test_lone_surrogates_fail_at_load(tmp_path: Path, row: dict[str, Any], field: str) -> None:
    good = {k: v for k, v in row.items() if k != "id"}
    good = json.loads(json.dumps(good).replace("\\ud800", "ok").replace("\\udfff", "ok"))
    path = _jsonl(tmp_path / "s.jsonl", [good, row, good])  # json reads "\ud800" fine
    with pytest.raises(PoolError, match="lone surrogate") as err:
        load_pool(path)
    assert (err.value.path, err.value.line, err.value.field) == (str(path), 2, field)
    pool = load_pool(path, skip_bad=True)
    assert len(pool) == 2 and [s.position for s in pool.skipped] == ["line 2"]
    assert pool.skipped[0].reason.startswith(f"field {field!r} holds a lone surrogate")
    as_json = tmp_path / "s.json"
    as_json.write_text(json.dumps([good, good, row]))
    with pytest.raises(PoolError, match="lone surrogate") as err:
        load_pool(as_json)
    assert (err.value.record, err.value.field) == (2, field)


def test_lone_surrogate_in_a_big_file(tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = [{"prompt": f"p{i}", "completion": "c"} for i in range(1200)]
    rows[1100]["completion"] = "\ud83d"  # half of an emoji
    path = _jsonl(tmp_path / "big.jsonl", rows)
    with pytest.raises(PoolError, match="lone surrogate") as err:
        load_pool(path)
    assert (err.value.line, err.value.field) == (1101, "completion")
    assert len(load_pool(path, skip_bad=True)) == 1199


# ---- 6. outsized texts: bounded by max_text_chars ----------------------------------------


def test_max_text_chars(tmp_path: Path) -> None:
    rows = [
        {"prompt": "short", "completion": "ok"},
        {"prompt": "p", "completion": "x" * 50},
        {"prompt": "y" * 11, "completion": "ok"},
    ]
    path = _jsonl(tmp_path / "long.jsonl", rows)
    with pytest.raises(PoolError, match="is 50 characters long, over max_text_chars=10") as err:
        load_pool(path, max_text_chars=10)
    assert (err.value.path, err.value.line, err.value.field) == (str(path), 2, "completion")
    assert "max_text_chars=None" in str(err.value)
    pool = load_pool(path, max_text_chars=10, skip_bad=True)
    assert pool.ids == ["long.jsonl:0"]
    assert [s.reason for s in pool.skipped] == [
        "field 'completion' is 50 characters long, over max_text_chars=10",
        "field 'prompt' is 11 characters long, over max_text_chars=10",
    ]
    assert len(load_pool(path, max_text_chars=50)) == 3
    assert len(load_pool(path, max_text_chars=None)) == 3
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "long.parquet")  # pyarrow compute
    with pytest.raises(PoolError, match="over max_text_chars=10") as err:
        load_pool(tmp_path / "long.parquet", max_text_chars=10)
    assert (err.value.record, err.value.field) == (1, "completion")
    alpaca = _jsonl(
        tmp_path / "a.jsonl", [{"instruction": "i" * 6, "input": "j" * 6, "output": "o"}]
    )
    with pytest.raises(PoolError, match="is 13 characters long") as err:  # after the join
        load_pool(alpaca, max_text_chars=12)
    assert err.value.field == "instruction"


def test_max_text_chars_default_and_arguments(tmp_path: Path) -> None:
    assert DEFAULT_MAX_TEXT_CHARS == 1_000_000
    path = _jsonl(tmp_path / "big.jsonl", [{"prompt": "p", "completion": "z" * 1_000_001}])
    with pytest.raises(PoolError, match="1,000,001 characters long"):
        load_pool(path)
    assert len(load_pool(path, max_text_chars=None)) == 1
    with pytest.raises(TypeError, match="max_text_chars"):
        load_pool(path, max_text_chars="10")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_text_chars must be at least 1"):
        load_pool(path, max_text_chars=0)
