"""Pool I/O: every format x every container on hand-made records, every error path, skip_bad,
ids, fingerprint, subset/column, a hypothesis round trip, and the real files
of ../shared/data against the text rules of its README."""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tritondiv.pool import (
    FORMATS,
    Pool,
    PoolError,
    SkippedRecord,
    detect_format,
    load_pool,
    summarize_skipped,
)

# --------------------------------------------------------------------------------------
# hand-made records of every format, with the texts the module docstring promises
# --------------------------------------------------------------------------------------

ALPACA = [
    {"id": "a1", "instruction": "Add the numbers.", "input": "2 and 3", "output": "5"},
    {"id": "a2", "instruction": "Say hi.", "input": "", "output": "hi"},
    {"id": None, "instruction": "Name a colour.", "input": None, "output": " red "},
]
ALPACA_TEXTS = (["Add the numbers.\n2 and 3", "Say hi.", "Name a colour."], ["5", "hi", " red "])

ALPACA_RESPONSE = [
    {"instruction": "Translate 'chat'.", "input": "to English", "response": "cat"},
    {"instruction": "Reverse 'ab'.", "input": "", "response": "ba"},
]
ALPACA_RESPONSE_TEXTS = (["Translate 'chat'.\nto English", "Reverse 'ab'."], ["cat", "ba"])

PROMPT_COMPLETION = [
    {"prompt": "Q: 1+1?", "completion": "2", "template": "math"},
    {"prompt": "Q: capital of France?", "completion": "Paris", "template": "geo"},
]
PROMPT_COMPLETION_TEXTS = (["Q: 1+1?", "Q: capital of France?"], ["2", "Paris"])

QUESTION_ANSWER = [
    {"question": "How many legs has a cat?", "answer": "4 #### 4"},
    {"question": "Héllo — ünïcode?", "answer": "ja ✓"},
]
QUESTION_ANSWER_TEXTS = (["How many legs has a cat?", "Héllo — ünïcode?"], ["4 #### 4", "ja ✓"])

SHAREGPT = [
    {
        "id": "s1",
        "conversations": [
            {"from": "system", "value": "Be brief."},
            {"from": "human", "value": "Hi"},
            {"from": "gpt", "value": "Hello!"},
            {"from": "human", "value": "   "},
            {"from": "human", "value": "How are you?"},
            {"from": "gpt", "value": "Fine."},
        ],
    },
    {
        "id": "s2",
        "conversations": [
            {"from": "gpt", "value": "...end of an earlier answer."},
            {"from": "user", "value": "Next question"},
            {"from": "chatgpt", "value": "Next answer"},
        ],
    },
]
SHAREGPT_TEXTS = (["Hi\n\nHow are you?", "Next question"], ["Hello!\n\nFine.", "Next answer"])
SHAREGPT_FIRST = (["Hi", "Next question"], ["Hello!", "Next answer"])

MESSAGES = [
    {
        "messages": [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "What is 2+2?"},
            {"role": "assistant", "content": "4"},
            {"role": "user", "content": "And 3+3?"},
            {"role": "assistant", "content": "6"},
        ]
    },
    {"messages": [{"role": "user", "content": "Ping"}, {"role": "assistant", "content": "Pong"}]},
]
MESSAGES_TEXTS = (["What is 2+2?\n\nAnd 3+3?", "Ping"], ["4\n\n6", "Pong"])
MESSAGES_FIRST = (["What is 2+2?", "Ping"], ["4", "Pong"])

CASES: dict[str, tuple[list[dict[str, Any]], tuple[list[str], list[str]]]] = {
    "alpaca": (ALPACA, ALPACA_TEXTS),
    "alpaca_response": (ALPACA_RESPONSE, ALPACA_RESPONSE_TEXTS),
    "prompt_completion": (PROMPT_COMPLETION, PROMPT_COMPLETION_TEXTS),
    "question_answer": (QUESTION_ANSWER, QUESTION_ANSWER_TEXTS),
    "sharegpt": (SHAREGPT, SHAREGPT_TEXTS),
    "messages": (MESSAGES, MESSAGES_TEXTS),
}


# --------------------------------------------------------------------------------------
# writers for every container
# --------------------------------------------------------------------------------------


def _jsonl_text(records: list[Any]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def write(records: list[Any], folder: Path, container: str, stem: str = "pool") -> Path:
    """Write records as ``container``; return the path load_pool takes."""
    folder.mkdir(parents=True, exist_ok=True)
    if container == "jsonl":
        path = folder / f"{stem}.jsonl"
        path.write_text(_jsonl_text(records), encoding="utf-8")
    elif container == "jsonl.gz":
        path = folder / f"{stem}.jsonl.gz"
        path.write_bytes(gzip.compress(_jsonl_text(records).encode()))
    elif container == "json":
        path = folder / f"{stem}.json"
        path.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
    elif container == "json.gz":
        path = folder / f"{stem}.json.gz"
        path.write_bytes(gzip.compress(json.dumps(records).encode()))
    elif container == "parquet":
        path = folder / f"{stem}.parquet"
        pq.write_table(pa.Table.from_pylist(records), path)
    elif container == "parquet.gz":
        path = folder / f"{stem}.parquet.gz"
        sink = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pylist(records), sink)
        path.write_bytes(gzip.compress(sink.getvalue().to_pybytes()))
    elif container == "directory":
        path = folder / f"{stem}_dir"
        # two files of different kinds, plus files the loader ignores
        write(records[:1], path, "jsonl", "a_part")
        write(records[1:], path / "sub", "parquet", "b_part")
        (path / "README.md").write_text("not a pool file")
        (path / ".hidden.jsonl").write_text("this is not json\n")
    elif container == "save_to_disk":
        import datasets

        path = folder / f"{stem}_saved"
        datasets.Dataset.from_list(records).save_to_disk(str(path))
    else:  # pragma: no cover - test bug
        raise AssertionError(container)
    return path


CONTAINERS = [
    "jsonl",
    "jsonl.gz",
    "json",
    "json.gz",
    "parquet",
    "parquet.gz",
    "directory",
    "save_to_disk",
]


@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("case", list(CASES))
def test_every_format_in_every_container(tmp_path: Path, case: str, container: str) -> None:
    records, (instruction, response) = CASES[case]
    path = write(records, tmp_path, container)
    pool = load_pool(path)
    assert len(pool) == len(records)
    assert pool.instruction == instruction
    assert pool.response == response
    assert pool.skipped == []
    assert len(set(pool.ids)) == len(pool)
    for i, rec in enumerate(records):
        if rec.get("id") is not None:
            assert pool.ids[i] == rec["id"]
    if container in ("jsonl", "jsonl.gz", "json", "json.gz"):
        assert pool.records == records  # verbatim
        assert pool.source == [str(path)] * len(records)
        assert pool.ids[-1] == (records[-1].get("id") or f"{path.name}:{len(records) - 1}")
    elif container != "directory":
        # columnar containers: same fields, absent ones read as null
        for got, rec in zip(pool.records, records, strict=True):
            assert {k: v for k, v in got.items() if k in rec} == rec
    else:
        assert pool.source[0] == str(path / "a_part.jsonl")
        assert pool.source[-1] == str(path / "sub" / "b_part.parquet")
        if records[0].get("id") is None:
            assert pool.ids[0] == "a_part.jsonl:0"


@pytest.mark.parametrize("container", ["jsonl", "parquet"])
@pytest.mark.parametrize(
    ("case", "expected"), [("sharegpt", SHAREGPT_FIRST), ("messages", MESSAGES_FIRST)]
)
def test_first_turn_only(tmp_path: Path, case: str, expected: Any, container: str) -> None:
    path = write(CASES[case][0], tmp_path, container)
    pool = load_pool(path, first_turn_only=True)
    assert (pool.instruction, pool.response) == expected
    # first_turn_only changes nothing for single-turn formats
    alp = write(ALPACA, tmp_path / "alp", container)
    assert load_pool(alp, first_turn_only=True).instruction == ALPACA_TEXTS[0]


def test_detect_format() -> None:
    assert detect_format(["instruction", "input", "output"]) == "alpaca"
    assert detect_format(["instruction", "response"]) == "alpaca"
    assert detect_format(["prompt", "completion", "template"]) == "prompt_completion"
    assert detect_format(["question", "answer"]) == "question_answer"
    assert detect_format(["id", "conversations"]) == "sharegpt"
    assert detect_format(["messages"]) == "messages"
    assert detect_format(["instruction"]) is None
    assert detect_format([]) is None


def test_format_detected_per_file_in_a_directory(tmp_path: Path) -> None:
    write(PROMPT_COMPLETION, tmp_path / "d", "jsonl", "a")
    write(SHAREGPT, tmp_path / "d", "json", "b")
    write(QUESTION_ANSWER, tmp_path / "d", "parquet", "c")
    pool = load_pool(tmp_path / "d")
    assert (
        pool.instruction
        == PROMPT_COMPLETION_TEXTS[0] + SHAREGPT_TEXTS[0] + QUESTION_ANSWER_TEXTS[0]
    )
    # a list of sources, in the order given
    both = load_pool([tmp_path / "d" / "c.parquet", tmp_path / "d" / "a.jsonl"])
    assert both.response == QUESTION_ANSWER_TEXTS[1] + PROMPT_COMPLETION_TEXTS[1]


def test_format_override(tmp_path: Path) -> None:
    # a record with fields of two formats: detection prefers alpaca, format= forces another
    recs = [{"instruction": "i", "output": "o", "prompt": "p", "completion": "c"}]
    path = write(recs, tmp_path, "jsonl")
    assert load_pool(path).instruction == ["i"]
    forced = load_pool(path, format="prompt_completion")
    assert (forced.instruction, forced.response) == (["p"], ["c"])
    with pytest.raises(PoolError) as err:
        load_pool(path, format="question_answer")
    assert err.value.field == "question" and err.value.line == 1
    with pytest.raises(ValueError, match="format must be one of"):
        load_pool(path, format="csv")
    assert set(FORMATS) >= {"auto", "alpaca", "sharegpt", "messages"}


def test_blank_lines_crlf_and_bom_in_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_bytes(
        b'\xef\xbb\xbf{"prompt": "a\\u2028b", "completion": "x"}\r\n\n   \n{"prompt": "c", "completion": "y\xe2\x80\xa8z"}\n'
    )
    pool = load_pool(path)
    assert pool.instruction == ["a\u2028b", "c"]
    assert pool.response == ["x", "y\u2028z"]  # a raw U+2028 inside a line does not split it
    path.write_text('{"prompt": "a", "completion": "x"}\n\n\n{"prompt": "c", "completion": 3}\n')
    with pytest.raises(PoolError) as err:
        load_pool(path)
    assert err.value.line == 4  # blank lines still count
    assert err.value.field == "completion"


# --------------------------------------------------------------------------------------
# error paths: every message names file, line/record and field
# --------------------------------------------------------------------------------------


def _error(path: Path, **kwargs: Any) -> PoolError:
    with pytest.raises(PoolError) as err:
        load_pool(path, **kwargs)
    return err.value


def test_malformed_json_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"prompt": "a", "completion": "b"}\n{"prompt": "a", "completion": "b"}\n{"prompt": oops}\n'
    )
    e = _error(path)
    assert (e.path, e.line, e.record, e.field) == (str(path), 3, None, None)
    assert str(e).startswith(f"{path}, line 3: is not valid JSON")
    assert "skip_bad" in str(e)


GOOD_ALPACA = {"instruction": "i", "input": "", "output": "o"}
BAD_ALPACA = [
    ({"instruction": "i", "input": "", "output": None}, "output", "is a JSON null"),
    ({"instruction": "i", "input": "", "response": "r"}, "output", "is missing"),
    (
        {"instruction": 5, "input": "", "output": "o"},
        "instruction",
        "is a JSON number, expected a string",
    ),
    ({"instruction": ["x"], "output": "o"}, "instruction", "is a JSON list"),
    ({"instruction": "i", "input": 3, "output": "o"}, "input", "expected a string or null"),
    ({"instruction": "  \n\t", "output": "o"}, "instruction", "is empty"),
    ({"instruction": "i", "input": "x", "output": ""}, "output", "is empty"),
]


@pytest.mark.parametrize(
    ("record", "field", "words", "container"),
    [
        (*case, container)
        for case in BAD_ALPACA
        for container in ("jsonl", "json", "parquet")
        # a parquet column has one type: a number among strings cannot be written
        if container != "parquet" or all(type(v) not in (int, list) for v in case[0].values())
    ],
)
def test_bad_alpaca_record(
    tmp_path: Path, record: dict[str, Any], field: str, words: str, container: str
) -> None:
    path = write([GOOD_ALPACA, GOOD_ALPACA, record], tmp_path, container)
    e = _error(path)
    assert e.path == str(path) and e.field == field
    if container == "jsonl":
        assert (e.line, e.record) == (3, None)
        assert f", line 3, field {field!r}: " in str(e)
    else:
        assert (e.line, e.record) == (None, 2)
        assert f", record 2, field {field!r}: " in str(e)
    if container == "parquet" and words == "is missing":
        words = "is a JSON null"  # a parquet column gives absent fields as null
    assert words in str(e)
    assert "Fix the record, or pass skip_bad=True (--skip-bad) to skip bad records" in str(e)
    assert ("allow_empty=True (--allow-empty)" in str(e)) == (words == "is empty")


@pytest.mark.parametrize(
    ("turns", "field", "words"),
    [
        ([{"from": "human", "value": "q"}], "conversations", "no non-empty assistant turn"),
        (
            [{"from": "gpt", "value": "a"}, {"from": "human", "value": "q"}],
            "conversations",
            "no non-empty assistant",
        ),
        ([{"from": "gpt", "value": "a"}], "conversations", "no non-empty user turn"),
        ([], "conversations", "no non-empty user turn"),
        (
            [{"from": "human", "value": "q"}, {"from": "gpt", "value": " "}],
            "conversations",
            "assistant",
        ),
        (
            [{"from": "human", "value": "q"}, {"from": "wizard", "value": "a"}],
            "conversations[1].from",
            "unknown role",
        ),
        (
            [{"from": "human", "value": 7}, {"from": "gpt", "value": "a"}],
            "conversations[0].value",
            "number",
        ),
        (
            [{"from": "human"}, {"from": "gpt", "value": "a"}],
            "conversations[0].value",
            "is missing",
        ),
        ([{"value": "q"}], "conversations[0].from", "is missing"),
        (["q", "a"], "conversations[0]", "is a JSON string, expected an object"),
        ("q", "conversations", "expected a list of turns"),
    ],
)
def test_bad_conversation(tmp_path: Path, turns: Any, field: str, words: str) -> None:
    records = [SHAREGPT[0], {"id": "x", "conversations": turns}]
    path = write(records, tmp_path, "json")
    e = _error(path)
    assert (e.record, e.field) == (1, field)
    assert f"{path}, record 1, field {field!r}: " in str(e) and words in str(e)


def test_bad_messages(tmp_path: Path) -> None:
    records = [
        MESSAGES[1],
        {"messages": [{"role": "user", "content": "q"}, {"role": "tool", "content": "{}"}]},
    ]
    e = _error(write(records, tmp_path, "jsonl"))
    assert (e.line, e.field) == (2, "messages") and "assistant" in str(e)
    records = [MESSAGES[1], {"messages": [{"role": "user", "content": None}]}]
    e = _error(write(records, tmp_path / "b", "jsonl"))
    assert (e.line, e.field) == (2, "messages[0].content")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "is empty (0 bytes)"),
        (b"\n  \n", "is empty (no JSON lines)"),
    ],
)
def test_empty_jsonl(tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / "e.jsonl"
    path.write_bytes(content)
    assert words in str(_error(path))


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("e.json", b"   ", "is empty"),
        ("e.json", b"[]", "empty list"),
        ("e.json", b'{"prompt": "a", "completion": "b"}', "holds a JSON object, expected a list"),
        ("e.json", b'[{"prompt": "a", "completion": "b"},\n {"prompt": }]', "is not valid JSON"),
        ("e.json.gz", b"not gzip at all", "not a valid gzip file"),
        ("e.jsonl", b'{"prompt": "\xff"}\n', "is not valid UTF-8"),
        ("e.parquet", b"PAR1 nonsense", "not a readable parquet file"),
        ("e.csv", b"a,b\n", "unsupported file type"),
        ("e.jsonl", b"[1, 2]\n[3]\n", "no record of this file is a JSON object"),
    ],
)
def test_unreadable_files(tmp_path: Path, name: str, content: bytes, words: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    e = _error(path)
    assert e.path == str(path) and words in str(e)
    if name == "e.json" and words == "is not valid JSON":
        assert e.line == 2


def test_empty_parquet_missing_paths_and_empty_dir(tmp_path: Path) -> None:
    path = tmp_path / "e.parquet"
    pq.write_table(pa.table({"prompt": pa.array([], pa.string())}), path)
    assert "holds no rows" in str(_error(path))
    assert "does not exist" in str(_error(tmp_path / "nope.jsonl"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    assert "holds no pool files" in str(_error(tmp_path / "empty"))
    with pytest.raises(PoolError, match="no pool sources"):
        load_pool([])


def test_unknown_format(tmp_path: Path) -> None:
    path = write([{"text": "a", "label": 1}], tmp_path, "jsonl")
    e = _error(path)
    assert e.line == 1 and "unknown record format" in str(e) and "'text', 'label'" in str(e)
    assert "format=" in str(e)
    # skip_bad does not hide an unknown format: it is a property of the file
    assert "unknown record format" in str(_error(path, skip_bad=True))


# --------------------------------------------------------------------------------------
# skip_bad, allow_empty, limit
# --------------------------------------------------------------------------------------

MIXED_JSONL = (
    '{"id": 1, "prompt": "p1", "completion": "c1"}\n'
    "{broken\n"
    '{"id": 3, "prompt": "", "completion": "c3"}\n'
    '{"id": 4, "prompt": "p4", "completion": "c4"}\n'
    "\n"
    '{"id": 6, "prompt": "p6", "completion": null}\n'
    '["not", "an", "object"]\n'
    '{"id": 8, "prompt": "p8", "completion": "c8"}\n'
)


def test_skip_bad_records_every_reason(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(MIXED_JSONL)
    e = _error(path)
    assert e.line == 2  # the first bad record
    pool = load_pool(path, skip_bad=True)
    assert pool.ids == ["1", "4", "8"]
    assert pool.instruction == ["p1", "p4", "p8"]
    assert [r["id"] for r in pool.records] == [1, 4, 8]
    assert [(s.path, s.position) for s in pool.skipped] == [
        (str(path), "line 2"),
        (str(path), "line 3"),
        (str(path), "line 6"),
        (str(path), "line 7"),
    ]
    reasons = [s.reason for s in pool.skipped]
    assert reasons[0].startswith("is not valid JSON")
    assert reasons[1] == "field 'prompt' is empty"
    assert reasons[2] == "field 'completion' is a JSON null, expected a string"
    assert reasons[3] == "is a JSON list, expected an object"
    assert all(isinstance(s, SkippedRecord) for s in pool.skipped)
    summary = summarize_skipped(pool.skipped)
    assert summary.startswith("skipped 4 records: 1 × ") and f"(first: {path} line 3)" in summary


def test_skip_bad_in_conversations_and_parquet(tmp_path: Path) -> None:
    records = [
        SHAREGPT[0],
        {"id": "x", "conversations": [{"from": "gpt", "value": "a"}]},
        SHAREGPT[1],
    ]
    pool = load_pool(write(records, tmp_path, "parquet"), skip_bad=True)
    assert pool.ids == ["s1", "s2"] and pool.instruction == SHAREGPT_TEXTS[0]
    assert pool.skipped[0].position == "record 1"
    assert pool.skipped[0].reason == "field 'conversations' has no non-empty user turn"
    assert [r["id"] for r in pool.records] == ["s1", "s2"]


def test_allow_empty(tmp_path: Path) -> None:
    records = [{"instruction": "i", "input": "", "output": ""}, {"instruction": " ", "output": "o"}]
    path = write(records, tmp_path, "json")
    assert _error(path).field == "output"
    pool = load_pool(path, allow_empty=True)
    assert (pool.instruction, pool.response) == (["i", " "], ["", "o"])
    # types are still checked
    path = write([{"instruction": "i", "output": 1}], tmp_path / "b", "json")
    assert _error(path, allow_empty=True).field == "output"


def test_limit(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(MIXED_JSONL)
    assert load_pool(path, skip_bad=True, limit=2).ids == ["1", "4"]
    assert load_pool(path, skip_bad=True, limit=0).ids == []
    assert load_pool(path, limit=1).ids == ["1"]  # the bad line 2 is never needed
    assert load_pool(path, skip_bad=True, limit=10).ids == ["1", "4", "8"]
    big = [{"prompt": f"p{i}", "completion": f"c{i}"} for i in range(100)]
    big[5]["completion"] = ""
    big_path = write(big, tmp_path, "jsonl", "big")
    got = load_pool(big_path, skip_bad=True, limit=50)
    assert got.instruction == [f"p{i}" for i in range(51) if i != 5]
    d = tmp_path / "d"
    write(PROMPT_COMPLETION, d, "jsonl", "a")
    write([{"bad": 1}], d, "jsonl", "b")  # never read: the limit is reached before it
    assert load_pool(d, limit=2).instruction == PROMPT_COMPLETION_TEXTS[0]
    with pytest.raises(ValueError, match="limit"):
        load_pool(path, limit=-1)


# --------------------------------------------------------------------------------------
# ids, fingerprint, subset, column, component
# --------------------------------------------------------------------------------------


def test_ids_unique_with_duplicates_and_fallbacks(tmp_path: Path) -> None:
    d = tmp_path / "d"
    write(
        [
            {"id": "x", "prompt": "a", "completion": "b"},
            {"id": "x", "prompt": "c", "completion": "d"},
        ],
        d,
        "jsonl",
        "one",
    )
    write(
        [{"id": "x#2", "prompt": "e", "completion": "f"}, {"prompt": "g", "completion": "h"}],
        d / "s",
        "json",
        "two",
    )
    pool = load_pool(d)
    assert pool.ids == ["x", "x#3", "x#2", "s/two.json:1"]
    assert [r.get("id") for r in pool.records] == ["x", "x", "x#2", None]


def _tiny_pool(tmp_path: Path) -> Pool:
    return load_pool(
        write(
            [*PROMPT_COMPLETION, {"prompt": "z", "completion": "y", "template": "t"}],
            tmp_path,
            "jsonl",
        )
    )


def test_fingerprint_stable_and_sensitive(tmp_path: Path) -> None:
    pool = _tiny_pool(tmp_path)
    again = load_pool(
        write(
            [*PROMPT_COMPLETION, {"prompt": "z", "completion": "y", "template": "t"}],
            tmp_path / "b",
            "jsonl",
        )
    )
    assert pool.fingerprint == again.fingerprint  # file location does not matter
    assert len(pool.fingerprint) == 64 and int(pool.fingerprint, 16) >= 0
    base = Pool(["a", "b"], ["x", "y"], ["1", "2"], ["f", "f"], [{}, {}])
    variants = [
        Pool(["a", "c"], ["x", "y"], ["1", "2"], ["f", "f"], [{}, {}]),  # id
        Pool(["a", "b"], ["x", "y "], ["1", "2"], ["f", "f"], [{}, {}]),  # instruction
        Pool(["a", "b"], ["x", "y"], ["1", "3"], ["f", "f"], [{}, {}]),  # response
        Pool(["b", "a"], ["y", "x"], ["2", "1"], ["f", "f"], [{}, {}]),  # order
        Pool(["a", "b"], ["xy", ""], ["1", "2"], ["f", "f"], [{}, {}]),  # boundary moved
        Pool(["a", "b"], ["1", "2"], ["x", "y"], ["f", "f"], [{}, {}]),  # components swapped
        Pool(["a"], ["x"], ["1"], ["f"], [{}]),  # fewer samples
    ]
    prints = {v.fingerprint for v in variants}
    assert len(prints) == len(variants) and base.fingerprint not in prints
    # source and records are not part of it
    assert (
        Pool(["a", "b"], ["x", "y"], ["1", "2"], ["g", "h"], [{"k": 1}, {}]).fingerprint
        == base.fingerprint
    )
    assert Pool(["\ud800"], ["x"], ["y"], ["f"], [{}]).fingerprint  # lone surrogates hash too


def test_fingerprint_pinned() -> None:
    # the documented layout, recomputed by hand: a change here changes every cache key downstream
    base = Pool(["a", "b"], ["x", "y"], ["1", "2"], ["f", "f"], [{}, {}])
    import hashlib

    h = hashlib.sha256(b"tritondiv.pool.v1\0")
    h.update((2).to_bytes(8, "little"))
    for col in (["a", "b"], ["x", "y"], ["1", "2"]):
        h.update(np.array([1, 1], dtype="<i8").tobytes())
        h.update("".join(col).encode())
    assert base.fingerprint == h.hexdigest()


def test_subset_column_component(tmp_path: Path) -> None:
    pool = _tiny_pool(tmp_path)
    sub = pool.subset([2, 0])
    assert sub.instruction == ["z", PROMPT_COMPLETION[0]["prompt"]]
    assert sub.ids == [pool.ids[2], pool.ids[0]]
    assert sub.records == [pool.records[2], pool.records[0]]
    assert sub.source == [pool.source[2], pool.source[0]]
    assert sub.column("template") == ["t", "math"]
    assert pool.subset(np.array([-1], dtype=np.int32)).ids == [pool.ids[2]]
    assert len(pool.subset([])) == 0 and pool.subset([]).records == []
    assert pool.subset(np.arange(3)).fingerprint == pool.fingerprint
    with pytest.raises(IndexError, match=r"\[0, 3\)"):
        pool.subset([3])
    with pytest.raises(TypeError, match="integers"):
        pool.subset([0.5])
    assert pool.column("template") == ["math", "geo", "t"]
    with pytest.raises(PoolError) as err:
        pool.column("tags")
    assert err.value.field == "tags" and "missing in 3 of 3 records" in str(err.value)
    assert pool.component("instruction") is pool.instruction
    assert pool.component("response") is pool.response
    with pytest.raises(ValueError, match="'instruction' or 'response'"):
        pool.component("both")
    assert "3 samples" in repr(pool)


def test_column_and_subset_on_parquet_without_materializing(tmp_path: Path) -> None:
    recs = [{"prompt": f"p{i}", "completion": f"c{i}", "template": f"t{i % 3}"} for i in range(10)]
    pool = load_pool(write(recs, tmp_path, "parquet"))
    sub = pool.subset([9, 1, 4])
    assert sub.column("template") == ["t0", "t1", "t1"]
    assert sub._records._cache is None  # column() read the table, not dicts
    assert sub.records == [recs[9], recs[1], recs[4]]
    with pytest.raises(PoolError, match="missing in 3 of 3"):
        sub.column("nope")


def test_pool_constructor_checks_lengths() -> None:
    with pytest.raises(ValueError, match="'response' has 1 entries for 2 ids"):
        Pool(["a", "b"], ["x", "y"], ["1"], ["f", "f"], [{}, {}])


# --------------------------------------------------------------------------------------
# hypothesis: random records round-trip through every container
# --------------------------------------------------------------------------------------

_text = st.text(min_size=1, max_size=20).filter(lambda s: not s.isspace())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(
        st.fixed_dictionaries(
            {
                "instruction": _text,
                "input": st.one_of(st.just(""), st.text(max_size=10)),
                "output": _text,
            }
        ),
        min_size=1,
        max_size=8,
    ),
    container=st.sampled_from(["jsonl", "jsonl.gz", "json", "parquet"]),
)
def test_round_trip(rows: list[dict[str, str]], container: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        pool = load_pool(write(rows, Path(d), container))
    assert pool.records == rows
    assert pool.instruction == [
        r["instruction"] + ("\n" + r["input"] if r["input"] else "") for r in rows
    ]
    assert pool.response == [r["output"] for r in rows]
    reference = Pool(pool.ids, pool.instruction, pool.response, pool.source, rows)
    assert pool.fingerprint == reference.fingerprint


# --------------------------------------------------------------------------------------
# real data: ../shared/data
# --------------------------------------------------------------------------------------

SHARED_COUNTS = {
    "t0_50k.jsonl.gz": 55_185,
    "gpteacher_codegen.json.gz": 4_535,
    "gpteacher_roleplay.json.gz": 1_923,
    "gpteacher_toolformer.json.gz": 7_673,
    "codealpaca_2k.json.gz": 2_017,
    "gsm8k_train.jsonl.gz": 7_473,
}


def _readme_texts(path: Path) -> tuple[list[str], list[str]]:
    """The README's rule, in plain Python: instruction = prompt | instruction + "\\n" + input
    (input non-empty) | question; response = completion | response | output | answer."""
    raw = gzip.decompress(path.read_bytes()).decode()
    recs = (
        [json.loads(line) for line in raw.split("\n") if line]
        if ".jsonl" in path.name
        else json.loads(raw)
    )
    ins, res = [], []
    for r in recs:
        if "prompt" in r:
            ins.append(r["prompt"])
        elif "question" in r:
            ins.append(r["question"])
        else:
            ins.append(r["instruction"] + ("\n" + r["input"] if r.get("input") else ""))
        res.append(next(r[k] for k in ("completion", "response", "output", "answer") if k in r))
    return ins, res


@pytest.mark.shared_data
def test_shared_data_every_file(shared_data: Path) -> None:
    for name, count in SHARED_COUNTS.items():
        path = shared_data / name
        pool = load_pool(path, allow_empty=True)
        assert len(pool) == count, name
        assert (pool.instruction, pool.response) == _readme_texts(path), name
        assert pool.ids[:2] == [f"{name}:0", f"{name}:1"]
        assert pool.skipped == []


@pytest.mark.shared_data
def test_shared_data_codealpaca_empty_outputs(shared_data: Path) -> None:
    path = shared_data / "codealpaca_2k.json.gz"
    with pytest.raises(PoolError) as err:
        load_pool(path)
    assert (err.value.record, err.value.field) == (237, "output")
    pool = load_pool(path, skip_bad=True)
    assert len(pool) == 2_015
    assert [(s.position, s.reason) for s in pool.skipped] == [
        ("record 237", "field 'output' is empty"),
        ("record 1859", "field 'output' is empty"),
    ]


@pytest.mark.shared_data
def test_shared_data_directory(shared_data: Path) -> None:
    pool = load_pool(shared_data, allow_empty=True)
    assert len(pool) == 78_806 == sum(SHARED_COUNTS.values())
    assert len(set(pool.ids)) == len(pool)
    # the embeddings' row order (README) maps onto the pool through the fallback ids
    rows = (shared_data / "embeddings" / "rows.tsv").read_text().split("\n")[1:]
    rows = [r.split("\t") for r in rows if r]
    assert len(rows) == len(pool)
    where = {sample_id: i for i, sample_id in enumerate(pool.ids)}
    order = np.array([where[f"{f}:{i}"] for f, i in rows])
    assert sorted(order.tolist()) == list(range(len(pool)))
    assert pool.subset(order).source[0].endswith("t0_50k.jsonl.gz")
    # a few exact texts, in the embeddings' row order
    in_rows = pool.subset(order)
    assert in_rows.response[-1] == _readme_texts(shared_data / "gsm8k_train.jsonl.gz")[1][-1]
    assert (
        in_rows.instruction[55_185]
        == _readme_texts(shared_data / "gpteacher_codegen.json.gz")[0][0]
    )
    templates = pool.subset(np.arange(55_185) + int(order[0])).column("template")
    assert len(set(templates)) == 283  # the data README says 294; the file holds 283
    with pytest.raises(PoolError, match="missing in 23621 of 78806 records"):
        pool.column("template")


@settings(max_examples=40, deadline=None)
@given(
    texts=st.lists(
        st.tuples(
            st.one_of(
                st.text(max_size=6), st.sampled_from(["", " ", "\u2028", "\x1c", "\u3000x", "é"])
            ),
            st.one_of(st.none(), st.text(max_size=4)),
            st.one_of(st.none(), st.text(max_size=6), st.sampled_from(["\t\n", "\u00a0", "ok"])),
        ),
        min_size=1,
        max_size=10,
    )
)
def test_table_path_matches_record_path(texts: list[tuple[str, str | None, str | None]]) -> None:
    # parquet is checked with pyarrow compute, jsonl record by record: same verdicts and texts
    rows = [{"instruction": a, "input": b, "output": c} for a, b, c in texts]
    with tempfile.TemporaryDirectory() as d:
        via_records = load_pool(write(rows, Path(d), "jsonl"), skip_bad=True)
        via_table = load_pool(write(rows, Path(d), "parquet"), skip_bad=True)
    assert via_table.instruction == via_records.instruction
    assert via_table.response == via_records.response
    assert [i.split(":")[1] for i in via_table.ids] == [i.split(":")[1] for i in via_records.ids]
    assert [s.reason for s in via_table.skipped] == [s.reason for s in via_records.skipped]
    assert [int(s.position.split()[1]) for s in via_table.skipped] == [
        int(s.position.split()[1]) - 1 for s in via_records.skipped
    ]


def test_table_columns_of_the_wrong_type(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"prompt": [1, 2], "completion": ["a", "b"], "id": [10, None]}), path)
    e = _error(path)
    assert (e.record, e.field) == (0, "prompt") and "is a JSON number, expected a string" in str(e)
    pq.write_table(
        pa.table({"prompt": ["x", "y"], "completion": ["a", "b"], "id": [10, None]}), path
    )
    assert load_pool(path).ids == ["10", "t.parquet:1"]
    pq.write_table(
        pa.table({"prompt": ["x", "y"], "completion": ["a", "b"], "id": [1.5, True]}), path
    )
    assert load_pool(path).ids == ["1.5", "1.0"]  # as str() of what the table holds
    pq.write_table(
        pa.table({"instruction": ["x", "y"], "input": [1, None], "output": ["a", "b"]}), path
    )
    e = _error(path)
    assert (e.record, e.field) == (0, "input") and "expected a string or null" in str(e)
    pq.write_table(
        pa.table(
            {"instruction": ["x"], "output": [None]},
            schema=pa.schema([("instruction", pa.string()), ("output", pa.string())]),
        ),
        path,
    )
    e = _error(path)
    assert (e.record, e.field) == (0, "output") and "is a JSON null" in str(e)


# --------------------------------------------------------------------------------------
# the pyarrow fast path of big jsonl files equals the json path
# --------------------------------------------------------------------------------------


def _both_paths(path: Path, **kwargs: Any) -> tuple[Any, Any]:
    """(fast, slow): each a Pool, or the PoolError message when loading fails."""
    import tritondiv.pool.readers.jsonl as tp

    out = []
    for min_lines in (1, 10**12):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(tp, "ARROW_MIN_LINES", min_lines)
            try:
                out.append(load_pool(path, **kwargs))
            except PoolError as exc:
                out.append(str(exc))
    return out[0], out[1]


def _same(fast: Any, slow: Any) -> None:
    if isinstance(slow, str) or isinstance(fast, str):
        assert fast == slow  # both fail, with the same message
        return
    assert fast.ids == slow.ids
    assert fast.instruction == slow.instruction
    assert fast.response == slow.response
    assert fast.source == slow.source
    assert fast.skipped == slow.skipped
    assert fast.records == slow.records


_id = st.one_of(
    st.none(),
    st.integers(-(2**70), 2**70),
    st.text(max_size=3),
    st.floats(allow_nan=False),
    st.booleans(),
)


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.fixed_dictionaries(
            {
                "prompt": st.one_of(
                    st.text(max_size=5),
                    st.sampled_from(["2020-01-01", "\ud83d\ude00", "\ud800", "x\udc00"]),
                )
            },
            optional={
                "id": _id,
                "completion": st.one_of(st.text(max_size=5), st.none(), st.integers()),
            },
        ),
        min_size=1,
        max_size=6,
    ),
    ascii_only=st.booleans(),
)
def test_arrow_fast_path_equals_json_path(rows: list[dict[str, Any]], ascii_only: bool) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "p.jsonl"
        path.write_text(
            "".join(json.dumps(r, ensure_ascii=ascii_only) + "\n" for r in rows),
            encoding="utf-8",
            errors="surrogatepass",
        )
        _same(*_both_paths(path, skip_bad=True, format="prompt_completion"))


def test_arrow_fast_path_on_a_big_file(tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = []
    for i in range(1500):
        row: dict[str, Any] = {"instruction": f"task {i} — ü 😀", "output": f"answer {i}"}
        if i % 3 == 0:
            row["input"] = None if i % 2 else ""
        elif i % 3 == 1:
            row["input"] = f"ctx {i}"
        if i % 5 == 0:
            row["id"] = i * 7
        rows.append(row)
    path = tmp_path / "big.jsonl"
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=i % 2 == 0) + "\n" for i, r in enumerate(rows))
    )
    pool = load_pool(path)
    assert type(pool._records.segments[0]).__name__ == "JsonLines"  # the fast path served it
    fast, slow = _both_paths(path)
    _same(fast, slow)
    assert (
        pool.instruction[1] == "task 1 — ü 😀\nctx 1"
        and pool.ids[0] == "0"
        and pool.ids[1] == "big.jsonl:1"
    )
    # a bad record sends the file to the json path: exact line and reason
    rows[700]["output"] = "  "
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    e = _error(path)
    assert (e.line, e.field) == (701, "output") and "is empty" in str(e)
    assert [s.position for s in load_pool(path, skip_bad=True).skipped] == ["line 701"]
    # ids that pyarrow would print differently from str() take the json path too
    rows[700]["output"] = "ok"
    rows[3]["id"] = 2.0
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert load_pool(path).ids[:4] == ["0", "big.jsonl:1", "big.jsonl:2", "2.0"]
    assert load_pool(path).ids[5] == "35"


def test_saved_dataset_dict_and_saved_dataset_inside_a_directory(tmp_path: Path) -> None:
    import datasets

    dd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list(PROMPT_COMPLETION),
            "test": datasets.Dataset.from_list(QUESTION_ANSWER),
        }
    )
    dd.save_to_disk(str(tmp_path / "dd"))
    pool = load_pool(tmp_path / "dd")  # splits in sorted name order: test, train
    assert pool.instruction == QUESTION_ANSWER_TEXTS[0] + PROMPT_COMPLETION_TEXTS[0]
    assert pool.ids == ["dd/test:0", "dd/test:1", "dd/train:0", "dd/train:1"]
    assert pool.source[0] == str(tmp_path / "dd" / "test")
    write(ALPACA, tmp_path, "jsonl", "z_last")
    whole = load_pool(tmp_path)  # the saved dataset is one entry of the directory
    assert whole.instruction == pool.instruction + ALPACA_TEXTS[0]
    assert whole.ids[:4] == pool.ids


_turn_text = st.text(min_size=1, max_size=8)


@settings(max_examples=25, deadline=None)
@given(
    convs=st.lists(
        st.lists(
            st.fixed_dictionaries(
                {
                    "from": st.sampled_from(["human", "gpt", "system", "user", "assistant"]),
                    "value": _turn_text,
                }
            ),
            min_size=1,
            max_size=5,
        ),
        min_size=1,
        max_size=6,
    ),
    first_turn_only=st.booleans(),
)
def test_conversations_round_trip(convs: list[list[dict[str, str]]], first_turn_only: bool) -> None:
    rows = [{"id": f"c{i}", "conversations": c} for i, c in enumerate(convs)]
    loaded = {}
    with tempfile.TemporaryDirectory() as d:
        for container in ("jsonl", "json", "parquet"):
            loaded[container] = load_pool(
                write(rows, Path(d), container), skip_bad=True, first_turn_only=first_turn_only
            )
    ref = loaded["jsonl"]
    for pool in loaded.values():
        assert (pool.ids, pool.instruction, pool.response) == (
            ref.ids,
            ref.instruction,
            ref.response,
        )
        assert [s.reason for s in pool.skipped] == [s.reason for s in ref.skipped]
        assert pool.records == [rows[int(i[1:])] for i in ref.ids]
    # the documented rule, in plain Python
    for row in rows:
        turns = [(t["from"], t["value"]) for t in row["conversations"] if t["value"].strip()]
        start = next((k for k, (r, _) in enumerate(turns) if r in ("human", "user")), None)
        users = [v for r, v in turns if r in ("human", "user")]
        after = (
            [v for r, v in turns[start:] if r in ("gpt", "assistant")] if start is not None else []
        )
        if first_turn_only and after:
            users = users[:1]
            first_reply = next(v for r, v in turns[start:] if r in ("gpt", "assistant"))
            after = [first_reply]
        if row["id"] in ref.ids:
            k = ref.ids.index(row["id"])
            assert ref.instruction[k] == "\n\n".join(users)
            assert ref.response[k] == "\n\n".join(after)
        else:
            assert not users or not after
