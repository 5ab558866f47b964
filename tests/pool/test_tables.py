"""Pipeline-native pool inputs (issue 11): in-memory tables (datasets Dataset/DatasetDict,
pandas, polars, pyarrow, a list of dicts), the field mapping (instruction=, response=,
id=; the CLI's --instruction-field/--response-field/--id-field), the columnar storage
(TextColumn) and the fingerprint, the same for the same records whatever the input type."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tritondiv.commands._options import PoolArgs, add_arguments, from_args
from tritondiv.pool import Pool, PoolError, TextColumn, load_pool, record_texts

RECORDS = [
    {"id": "a", "instruction": "Add the numbers.", "input": "2 and 3", "output": "5"},
    {"id": "b", "instruction": "Name a colour.", "input": "", "output": "Blue"},
    {"id": "c", "instruction": "Say hi in Greek: ", "input": None, "output": "Γειά σου"},
]


def _reference_fingerprint(ids: list[str], ins: list[str], res: list[str]) -> str:
    """The fingerprint as defined before the columnar storage (plain Python)."""
    h = hashlib.sha256(b"tritondiv.pool.v1\0")
    h.update(len(ids).to_bytes(8, "little"))
    for col in (ids, ins, res):
        h.update(np.array([len(s) for s in col], dtype="<i8").tobytes())
        h.update("".join(col).encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def _texts(pool: Pool) -> tuple[list[str], list[str], list[str]]:
    return pool.ids.to_pylist(), pool.instruction.to_pylist(), pool.response.to_pylist()


def _expected() -> tuple[list[str], list[str], list[str]]:
    pairs = [record_texts(r) for r in RECORDS]
    return [r["id"] for r in RECORDS], [p[0] for p in pairs], [p[1] for p in pairs]


# ---- every input type gives the same pool -----------------------------------------------


def _inputs(tmp_path: Path) -> dict[str, Any]:
    import datasets
    import pandas as pd

    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in RECORDS))
    parquet = tmp_path / "p.parquet"
    pq.write_table(pa.Table.from_pylist(RECORDS), parquet)
    ds = datasets.Dataset.from_list(RECORDS)
    return {
        "jsonl": jsonl,
        "parquet": parquet,
        "records": [dict(r) for r in RECORDS],
        "pandas": pd.DataFrame(RECORDS),
        "arrow": pa.Table.from_pylist(RECORDS),
        "record_batch": pa.RecordBatch.from_pylist(RECORDS),
        "dataset": ds,
        "reordered_dataset": ds.select([2, 0, 1]).select([1, 2, 0]),  # an indices mapping
    }


def test_every_input_type_gives_the_same_pool(tmp_path: Path) -> None:
    want = _expected()
    ref = _reference_fingerprint(*want)
    for name, source in _inputs(tmp_path).items():
        pool = load_pool(source)
        assert _texts(pool) == want, name
        assert pool.fingerprint == ref, name
        assert pool.records == RECORDS or name in ("pandas", "arrow", "record_batch"), name


def test_dataset_dict_needs_a_split() -> None:
    import datasets

    ds = datasets.Dataset.from_list(RECORDS)
    dd = datasets.DatasetDict(train=ds, test=ds.select([0]), empty=ds.select([]))
    with pytest.raises(
        PoolError, match=r"DatasetDict with the splits 'empty', 'test', 'train'; splits are never"
    ):
        load_pool(dd)
    pool = load_pool(dd, split="test")
    assert pool.ids == ["a"] and pool.source == ["<DatasetDict split 'test'>"]
    assert load_pool(dd, split="train").fingerprint == load_pool(ds).fingerprint
    with pytest.raises(PoolError, match=r"has no split 'dev' \(splits: 'empty', 'test', 'train'\)"):
        load_pool(dd, split="dev")
    with pytest.raises(PoolError, match=r"the split 'empty' holds no rows"):
        load_pool(dd, split="empty")
    with pytest.raises(ValueError, match=r"split='train' applies to a datasets.DatasetDict only"):
        load_pool(ds, split="train")
    with pytest.raises(ValueError, match=r"split='train' applies to a datasets.DatasetDict source"):
        load_pool("x.jsonl", split="train")
    with pytest.raises(TypeError, match=r"split= must be a split name \(str\) or None, got int"):
        load_pool(dd, split=0)  # type: ignore[arg-type]


def test_empty_and_unsupported_sources() -> None:
    import datasets
    import pandas as pd

    with pytest.raises(PoolError, match=r"<Dataset>: holds no rows"):
        load_pool(datasets.Dataset.from_list(RECORDS).select([]))
    with pytest.raises(PoolError, match=r"<pandas.DataFrame>: holds no rows"):
        load_pool(pd.DataFrame({"prompt": [], "completion": []}))
    with pytest.raises(PoolError, match=r"<pyarrow.Table>: holds no rows"):
        load_pool(pa.table({"prompt": pa.array([], pa.string())}))
    with pytest.raises(TypeError, match=r"source must be a path, a list of paths, .* got dict"):
        load_pool({"prompt": "x"})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"only records \(dicts\) or only paths; item 1 is str"):
        load_pool([{"prompt": "x", "completion": "y"}, "a.jsonl"])
    with pytest.raises(TypeError, match=r"a list source must hold paths .*; got int"):
        load_pool(["a.jsonl", 3])  # type: ignore[list-item]


def test_pandas_categories_and_bad_records_in_a_frame() -> None:
    import pandas as pd

    frame = pd.DataFrame({"prompt": ["one", "two", "one"], "completion": ["1", " ", "1"]}).astype(
        {"prompt": "category"}
    )
    with pytest.raises(
        PoolError, match=r"<pandas.DataFrame>, record 1, field 'completion': is empty"
    ):
        load_pool(frame)
    pool = load_pool(frame, skip_bad=True)
    assert pool.instruction == ["one", "one"] and pool.ids == ["dataframe:0", "dataframe:2"]
    assert [(s.path, s.position) for s in pool.skipped] == [("<pandas.DataFrame>", "record 1")]


def test_polars_frame() -> None:
    pl = pytest.importorskip("polars")
    frame = pl.DataFrame(RECORDS)
    assert _texts(load_pool(frame)) == _expected()
    assert _texts(load_pool(frame.lazy())) == _expected()


# ---- the field mapping ------------------------------------------------------------------


QUERY = [
    {"query": "What is 2+2?", "output": "4"},
    {"query": "Capital of France?", "output": "Paris"},
]


def test_query_output_records_with_instruction_query(tmp_path: Path) -> None:
    import pandas as pd

    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in QUERY))
    with pytest.raises(PoolError, match="unknown record format"):
        load_pool(path)
    for source in (path, QUERY, pd.DataFrame(QUERY)):
        pool = load_pool(source, instruction="query")
        assert pool.instruction == ["What is 2+2?", "Capital of France?"]
        assert pool.response == ["4", "Paris"]


def test_instruction_fields_join_like_alpaca() -> None:
    import pandas as pd

    alpaca = load_pool(RECORDS)
    for source in (RECORDS, pd.DataFrame(RECORDS)):
        mapped = load_pool(source, instruction=["instruction", "input"], response="output")
        assert mapped.fingerprint == alpaca.fingerprint
        assert load_pool(source, instruction="instruction, input").instruction == alpaca.instruction
    rows = [
        {"q": "Q", "ctx": "C", "hint": "H", "a": "A"},
        {"q": "Q", "ctx": None, "hint": "", "a": "A"},
        {"q": "Q", "ctx": "", "hint": "H", "a": "A"},
    ]
    for source in (rows, pd.DataFrame(rows)):
        pool = load_pool(source, instruction=["q", "ctx", "hint"], response="a")
        assert pool.instruction == ["Q\nC\nH", "Q", "Q\nH"]


def test_id_field_and_response_field() -> None:
    rows = [
        {"uid": 7, "instruction": "x", "answer_text": "y"},
        {"uid": None, "instruction": "z", "answer_text": "w"},
    ]
    pool = load_pool(rows, response="answer_text", id="uid")
    assert pool.ids == ["7", "records:1"] and pool.response == ["y", "w"]
    assert load_pool(pa.Table.from_pylist(rows), response="answer_text", id="uid").ids == [
        "7",
        "table:1",
    ]
    # id= alone keeps the format's texts
    assert load_pool(RECORDS, id="output").ids == ["5", "Blue", "Γειά σου"]


def test_mapping_errors_name_the_fields(tmp_path: Path) -> None:
    import pandas as pd

    with pytest.raises(
        PoolError, match=r"<records>: has no field 'quer' \(fields: 'query', 'output'\)"
    ):
        load_pool(QUERY, instruction="quer")
    with pytest.raises(PoolError, match=r"has no field 'answer' \(fields: 'query', 'output'\)"):
        load_pool(pd.DataFrame(QUERY), instruction="query", response="answer")
    with pytest.raises(PoolError, match=r"has no field 'key' \(fields: 'query', 'output'\)"):
        load_pool(QUERY, instruction="query", id="key")
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in QUERY))
    with pytest.raises(PoolError, match=r"q\.jsonl: has no field 'prompt'") as err:
        load_pool(path, instruction="prompt")
    assert err.value.path == str(path) and "--instruction-field" in str(err.value)
    # a record of the file missing a mapped field is a bad record naming it
    path.write_text(json.dumps(QUERY[0]) + "\n" + json.dumps({"output": "x"}) + "\n")
    with pytest.raises(PoolError, match=r"line 2, field 'query': is missing"):
        load_pool(path, instruction="query")
    rows = [{"q": "Q", "ctx": 3, "a": "A"}]
    with pytest.raises(
        PoolError, match=r"field 'ctx': is a JSON number, expected a string or null"
    ):
        load_pool(rows, instruction=["q", "ctx"], response="a")
    with pytest.raises(
        PoolError, match=r"field 'ctx': is a JSON number, expected a string or null"
    ):
        load_pool(pa.Table.from_pylist(rows), instruction=["q", "ctx"], response="a")


def test_mapping_keyword_checks() -> None:
    with pytest.raises(TypeError, match=r"instruction= must be a field name, a list of field"):
        load_pool(QUERY, instruction=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"response= must be a field name \(str\) or None, got int"):
        load_pool(QUERY, instruction="query", response=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"instruction= must name at least one field"):
        load_pool(QUERY, instruction=[])
    with pytest.raises(ValueError, match=r"instruction= names a field twice"):
        load_pool(QUERY, instruction=["query", "query"])
    with pytest.raises(ValueError, match=r"id= must be a non-empty field name"):
        load_pool(QUERY, id="")
    with pytest.raises(ValueError, match=r"format='sharegpt' does not apply with them"):
        load_pool(QUERY, instruction="query", format="sharegpt")
    with pytest.raises(ValueError, match=r"do not apply to the default pool"):
        load_pool(None, instruction="query")


def test_big_mapped_jsonl_takes_the_arrow_path_and_matches_the_records(tmp_path: Path) -> None:
    rows = [
        {"q": f"question {i}", "ctx": "" if i % 3 else f"c{i}", "a": f"answer {i}"}
        for i in range(2500)
    ]
    path = tmp_path / "big.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    pool = load_pool(path, instruction=["q", "ctx"], response="a")
    assert pool.instruction.arrow is not None
    ref = load_pool(rows, instruction=["q", "ctx"], response="a")
    assert pool.instruction == ref.instruction and pool.response == ref.response
    assert pool.subset([2499]).records == [rows[2499]]


def test_cli_mapping_flags(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser, PoolArgs)
    path = tmp_path / "q.jsonl"
    rows = [{"q": "Q", "ctx": "C", "extra": "E", "a": "A", "key": "k1"}]
    path.write_text(json.dumps(rows[0]) + "\n")
    argv = [str(path), "--instruction-field", "q,ctx", "--instruction-field", "extra",
            "--response-field", "a", "--id-field", "key"]  # fmt: skip
    args = from_args(PoolArgs, parser.parse_args(argv))
    assert args.instruction_field == ("q", "ctx", "extra")
    pool = args.load()
    assert pool.instruction == ["Q\nC\nE"] and pool.response == ["A"] and pool.ids == ["k1"]
    info = args.info(pool)
    assert info["instruction_field"] == ["q", "ctx", "extra"] and info["id_field"] == "key"
    plain = from_args(PoolArgs, parser.parse_args([str(path)]))
    assert "instruction_field" not in plain.info(load_pool(RECORDS))


# ---- the columnar storage ---------------------------------------------------------------


def test_text_column_is_a_read_only_sequence() -> None:
    col = TextColumn(["a", "bb", "ccc", "dddd"])
    assert col.arrow is not None and col.arrow.type == pa.large_string()
    assert len(col) == 4 and col[1] == "bb" and col[-1] == "dddd" and col[np.int64(2)] == "ccc"
    assert (
        isinstance(col[1:3], TextColumn) and col[1:3] == ["bb", "ccc"] and col[::2] == ["a", "ccc"]
    )
    assert list(col) == ["a", "bb", "ccc", "dddd"] == col.to_pylist()
    assert col == ("a", "bb", "ccc", "dddd") and col != ["a"] and col == TextColumn(col.arrow)
    assert col.take(np.array([3, 0])) == ["dddd", "a"]
    assert col + ["e"] == ["a", "bb", "ccc", "dddd", "e"]  # noqa: RUF005 (the operator)
    with pytest.raises(IndexError, match="text index 4 out of range for 4 texts"):
        col[4]
    with pytest.raises(TypeError):
        col["x"]  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        col[0] = "z"  # type: ignore[index]
    with pytest.raises(TypeError, match="unhashable"):
        hash(col)
    # dictionary-encoded and chunked arrays are held as large_string
    dict_col = TextColumn(pa.array(["x", "y", "x"]).dictionary_encode())
    assert dict_col == ["x", "y", "x"] and dict_col.arrow.type == pa.large_string()
    chunked = TextColumn(pa.chunked_array([["a"], [], ["b", "c"]]))
    assert list(chunked) == ["a", "b", "c"] and chunked[2] == "c" and chunked[1:] == ["b", "c"]


def test_lone_surrogates_stay_a_list_and_fingerprint_like_before() -> None:
    ids, ins, res = ["x", "y"], ["ok", "bad \ud800"], ["r1", "r2"]
    pool = Pool(ids, ins, res, ["s", "s"], [{}, {}])
    assert pool.instruction.arrow is None and pool.instruction == ins
    assert pool.fingerprint == _reference_fingerprint(ids, ins, res)
    assert pool.subset([1]).instruction == ["bad \ud800"]


def test_fingerprint_matches_the_reference_on_real_data(shared_data: Path, tmp_path: Path) -> None:
    import pandas as pd

    pool = load_pool(shared_data / "t0_50k.jsonl.gz", limit=3000)
    assert pool.fingerprint == _reference_fingerprint(*_texts(pool))
    sub = pool.subset(np.arange(2999, -1, -7))
    assert sub.fingerprint == _reference_fingerprint(*_texts(sub))
    # the same records with ids, as a big jsonl (the pyarrow path), a frame, a list, a Dataset
    rows = [
        {"id": i, "prompt": a, "completion": b}
        for i, a, b in zip(pool.ids, pool.instruction, pool.response, strict=True)
    ]
    path = tmp_path / "t0.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    from_file = load_pool(path)
    assert from_file.instruction.arrow is not None
    assert from_file.fingerprint == pool.fingerprint
    assert load_pool(pd.DataFrame(rows)).fingerprint == pool.fingerprint
    assert load_pool(rows).fingerprint == pool.fingerprint


# ---- the streamed jsonl path ------------------------------------------------------------


@pytest.mark.parametrize("trailing_newline", [True, False])
def test_streamed_jsonl_equals_the_in_memory_and_json_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trailing_newline: bool
) -> None:
    import tritondiv.pool.readers.jsonl as jsonl

    rows = [{"id": f"r{i}", "prompt": f"p {i} ü", "completion": f"c {i}"} for i in range(1200)]
    parts = []
    for i, r in enumerate(rows):
        parts.append(("  " if i % 97 == 0 else "") + json.dumps(r, ensure_ascii=i % 2 == 0))
        if i % 101 == 0:
            parts.append("")  # a blank line
        if i % 103 == 0:
            parts.append(" \t ")  # a whitespace line
    text = "\r\n".join(parts[:600]) + "\r\n" + "\n".join(parts[600:])
    path = tmp_path / "s.jsonl"
    path.write_text(text + ("\n" if trailing_newline else ""), encoding="utf-8")
    monkeypatch.setattr(jsonl, "STREAM_MIN_BYTES", 0)
    monkeypatch.setattr(jsonl, "_SCAN_STEP", 4096)  # many steps, lines cut across them
    streamed = load_pool(path)
    assert type(streamed._records.segments[0]).__name__ == "JsonLines"
    monkeypatch.setattr(jsonl, "STREAM_MIN_BYTES", 1 << 40)
    in_memory = load_pool(path)
    monkeypatch.setattr(jsonl, "ARROW_MIN_LINES", 1 << 40)
    plain = load_pool(path)
    assert type(plain._records.segments[0]) is list
    for pool in (streamed, in_memory):
        assert _texts(pool) == _texts(plain) and pool.records == plain.records == rows
    # a bad record on the streamed path: the json path's exact line number
    monkeypatch.setattr(jsonl, "STREAM_MIN_BYTES", 0)
    monkeypatch.setattr(jsonl, "ARROW_MIN_LINES", 1000)
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[700] = json.dumps({"id": "x", "prompt": "", "completion": "c"})
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(PoolError, match=r"s\.jsonl, line 701, field 'prompt': is empty"):
        load_pool(path)


def test_streamed_records_of_a_changed_file_are_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tritondiv.pool.readers.jsonl as jsonl

    monkeypatch.setattr(jsonl, "STREAM_MIN_BYTES", 0)
    path = tmp_path / "c.jsonl"
    rows = [{"prompt": f"p{i}", "completion": "c"} for i in range(1000)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    pool = load_pool(path)
    assert pool.subset([999]).records == [rows[999]]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows[:10]))
    with pytest.raises(PoolError, match=r"c\.jsonl: changed after the pool was read"):
        pool.subset([0]).records  # noqa: B018


@pytest.mark.parametrize("stream", [True, False])
def test_a_later_block_with_other_fields_or_types_falls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stream: bool
) -> None:
    import tritondiv.pool.readers.jsonl as jsonl

    rows: list[dict[str, Any]] = [{"instruction": f"i{k}", "output": f"o{k}"} for k in range(1500)]
    for k in range(900, 1500):
        rows[k]["input"] = f"x{k}" if k % 2 else None  # a field only the later blocks have
    rows[1400]["id"] = 7  # ... and an id that is a number
    path = tmp_path / "late.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.setattr(jsonl, "STREAM_MIN_BYTES", 0 if stream else 1 << 40)
    monkeypatch.setattr(jsonl, "_BLOCK_BYTES", 4096)
    pool = load_pool(path)
    assert pool.instruction.arrow is not None
    plain = load_pool(rows)
    assert pool.instruction == plain.instruction and pool.response == plain.response
    assert pool.ids[1400] == "7" and pool.ids[0] == "late.jsonl:0"
