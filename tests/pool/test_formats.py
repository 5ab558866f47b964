"""The one record rule: record_texts on single records (every format, every problem), the
same texts as load_pool gives for each record read from its own single-format file, and
load_pool(format="mixed") for files that mix formats."""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tritondiv.pool import FORMATS, PoolError, load_pool, record_texts

MIXED: list[dict[str, Any]] = [
    {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"},
    {
        "id": "s1",
        "conversations": [
            {"from": "system", "value": "Be brief."},
            {"from": "human", "value": "Hi"},
            {"from": "gpt", "value": "Hello!"},
            {"from": "human", "value": "How are you?"},
            {"from": "gpt", "value": "Fine."},
        ],
    },
    {"prompt": "Q: 1+1?", "completion": "2", "template": "math"},
    {"instruction": "Say hi.", "input": "", "response": "hi"},
    {"question": "How many legs has a cat?", "answer": "4"},
    {
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Ping"}]},
            {"role": "assistant", "content": "Pong"},
        ]
    },
    {"prompt": "Q: capital of France?", "completion": " Paris "},
]


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return path


@pytest.mark.parametrize("first_turn_only", [False, True])
def test_record_texts_equals_load_pool_of_each_records_own_file(
    tmp_path: Path, first_turn_only: bool
) -> None:
    # issue 10, defect 1: one record rule, whatever reads the record
    for i, record in enumerate(MIXED):
        own = load_pool(
            _write_jsonl(tmp_path / f"r{i}.jsonl", [record]), first_turn_only=first_turn_only
        )
        expected = (own.instruction[0], own.response[0])
        assert record_texts(record, first_turn_only=first_turn_only) == expected, i
    # and load_pool reads a file mixing them with format="mixed", record by record
    mixed = load_pool(
        _write_jsonl(tmp_path / "mixed.jsonl", MIXED),
        format="mixed",
        first_turn_only=first_turn_only,
    )
    assert list(zip(mixed.instruction, mixed.response, strict=True)) == [
        record_texts(r, first_turn_only=first_turn_only) for r in MIXED
    ]
    assert mixed.records == MIXED
    assert "mixed" in FORMATS


# --------------------------------------------------------------------------------------
# record_texts: every problem names its field
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "fmt", "field", "words"),
    [
        ({"instruction": "x"}, "alpaca", "output", "is missing"),
        ({"instruction": None, "output": "y"}, "auto", "instruction", "is a JSON null"),
        ({"instruction": "x", "input": 3, "output": "y"}, "auto", "input", "string or null"),
        ({"instruction": "x", "output": " \n"}, "auto", "output", "is empty"),
        ({"prompt": "x", "completion": 1.5}, "auto", "completion", "is a JSON number"),
        ({"question": [], "answer": "y"}, "question_answer", "question", "is a JSON list"),
        ({"conversations": "hi"}, "auto", "conversations", "expected a list of turns"),
        ({"conversations": [{"from": "gpt", "value": "a"}]}, "sharegpt", "conversations", "user"),
        (
            {"messages": [{"role": "user", "content": "a"}, {"role": "alien", "content": "b"}]},
            "auto",
            "messages[1].role",
            "unknown role 'alien'",
        ),
        ({"text": "x"}, "auto", None, "unknown record format"),
        ({"text": "x"}, "mixed", None, "unknown record format"),
    ],
)
def test_record_texts_problems(
    record: dict[str, Any], fmt: str, field: str | None, words: str
) -> None:
    with pytest.raises(PoolError, match=words) as err:
        record_texts(record, fmt)
    assert err.value.field == field


def test_record_texts_arguments() -> None:
    assert record_texts({"instruction": "x", "output": ""}, allow_empty=True) == ("x", "")
    assert record_texts({"instruction": "x", "input": None, "response": "y"}) == ("x", "y")
    assert record_texts({"instruction": "a", "input": "b", "output": "c"}, "alpaca") == (
        "a\nb",
        "c",
    )
    with pytest.raises(TypeError, match="mapping"):
        record_texts([("instruction", "x")])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fmt must be one of"):
        record_texts({"prompt": "x", "completion": "y"}, "csv")


# --------------------------------------------------------------------------------------
# the columnar fast paths give exactly what record_texts gives
# --------------------------------------------------------------------------------------


def _reference(records: list[Any], **kwargs: Any) -> list[tuple[str, str] | str]:
    """record_texts per record: the texts, or the skipped-record reason load_pool lists."""
    out: list[tuple[str, str] | str] = []
    for r in records:
        try:
            out.append(record_texts(r, "prompt_completion", **kwargs))
        except PoolError as e:
            out.append(f"field {e.field!r} {e.reason}" if e.field else e.reason)
    return out


def _as_loaded(pool: Any, n: int, offset: int) -> list[tuple[str, str] | str]:
    """A pool's texts and skip reasons in record order (position -> record index)."""
    out: dict[int, tuple[str, str] | str] = {}
    for s in pool.skipped:
        out[int(s.position.split()[1]) - offset] = s.reason
    for sample_id, a, b in zip(pool.ids, pool.instruction, pool.response, strict=True):
        out[int(sample_id.rsplit(":", 1)[1])] = (a, b)
    return [out[i] for i in range(n)]


_field = st.one_of(
    st.text(max_size=6),
    st.sampled_from(["", " ", "\u2028", "\x1c", "\u3000x", "é", "\t\n", "\u00a0"]),
    st.none(),
    st.integers(-3, 3),
)


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.fixed_dictionaries({"prompt": _field}, optional={"completion": _field}),
        min_size=1,
        max_size=8,
    ),
    allow_empty=st.booleans(),
)
def test_fast_paths_equal_record_texts(rows: list[dict[str, Any]], allow_empty: bool) -> None:
    import tritondiv.pool.readers.jsonl as reader

    expected = _reference(rows, allow_empty=allow_empty)
    with tempfile.TemporaryDirectory() as d:
        jsonl = _write_jsonl(Path(d) / "p.jsonl", rows)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(reader, "ARROW_MIN_LINES", 1)  # pyarrow's json reader, when it can
            fast = load_pool(
                jsonl, format="prompt_completion", skip_bad=True, allow_empty=allow_empty
            )
        parquet = Path(d) / "p.parquet"
        try:
            written = pa.Table.from_pylist(rows)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types: no single column type
            table = None
        else:
            pq.write_table(written, parquet)
            # a table cannot tell a missing field from a null one: its rows are the records
            expected_table = _reference(written.to_pylist(), allow_empty=allow_empty)
            table = load_pool(
                parquet, format="prompt_completion", skip_bad=True, allow_empty=allow_empty
            )
    assert _as_loaded(fast, len(rows), 1) == expected
    if table is not None:
        assert _as_loaded(table, len(rows), 0) == expected_table


@pytest.mark.shared_data
@pytest.mark.parametrize(
    "name",
    [
        "gsm8k_train.jsonl.gz",  # pyarrow's json reader
        "gpteacher_roleplay.json.gz",  # json records
        "codealpaca_2k.json.gz",
    ],
)
def test_real_files_equal_record_texts(shared_data: Path, tmp_path: Path, name: str) -> None:
    path = shared_data / name
    raw = gzip.decompress(path.read_bytes()).decode()
    records = (
        [json.loads(line) for line in raw.split("\n") if line]
        if ".jsonl" in name
        else json.loads(raw)
    )
    expected = [record_texts(r, allow_empty=True) for r in records]
    pool = load_pool(path, allow_empty=True)
    assert list(zip(pool.instruction, pool.response, strict=True)) == expected
    # the same records as a parquet table (pyarrow compute), and per record ("mixed")
    sliced = records[:1500]
    pq.write_table(pa.Table.from_pylist(sliced), tmp_path / "t.parquet")
    table = load_pool(tmp_path / "t.parquet", allow_empty=True)
    assert list(zip(table.instruction, table.response, strict=True)) == expected[:1500]
    mixed = load_pool(tmp_path / "t.parquet", allow_empty=True, format="mixed")
    assert (mixed.instruction, mixed.response) == (table.instruction, table.response)


@pytest.mark.shared_data
def test_real_t0_head_equals_record_texts(shared_data: Path, tmp_path: Path) -> None:
    with gzip.open(shared_data / "t0_50k.jsonl.gz", "rt", encoding="utf-8") as fh:
        lines = [next(fh) for _ in range(3000)]
    (tmp_path / "t0.jsonl").write_text("".join(lines))
    pool = load_pool(tmp_path / "t0.jsonl")
    assert type(pool._records.segments[0]).__name__ == "JsonLines"  # the fast path served it
    expected = [record_texts(json.loads(line)) for line in lines]
    assert list(zip(pool.instruction, pool.response, strict=True)) == expected


# --------------------------------------------------------------------------------------
# format="mixed"
# --------------------------------------------------------------------------------------


def test_mixed_bad_records_and_tables(tmp_path: Path) -> None:
    records: list[Any] = [
        *MIXED[:3],
        {"text": "no format"},
        [1, 2],
        {"prompt": "p", "completion": ""},
    ]
    path = _write_jsonl(tmp_path / "bad.jsonl", records)
    with pytest.raises(PoolError, match="unknown record format") as err:
        load_pool(path, format="mixed")
    assert (err.value.line, err.value.field) == (4, None)
    pool = load_pool(path, format="mixed", skip_bad=True)
    assert len(pool) == 3
    assert [(s.position, s.reason) for s in pool.skipped] == [
        ("line 4", "has an unknown record format (fields: 'text')"),
        ("line 5", "is a JSON list, expected an object"),
        ("line 6", "field 'completion' is empty"),
    ]
    # a table gives every row every column: null fields do not count for detection
    single = [MIXED[0], MIXED[2], MIXED[4], MIXED[6]]
    keys = sorted({k for r in single for k in r})
    pq.write_table(
        pa.Table.from_pylist([{k: r.get(k) for k in keys} for r in single]), tmp_path / "m.parquet"
    )
    table = load_pool(tmp_path / "m.parquet", format="mixed")
    assert list(zip(table.instruction, table.response, strict=True)) == [
        record_texts(r) for r in single
    ]
    with pytest.raises(PoolError, match="is a JSON null") as err:
        load_pool(tmp_path / "m.parquet")  # auto: one format (alpaca, by the columns) per file
    assert (err.value.record, err.value.field) == (1, "instruction")
