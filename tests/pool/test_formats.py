"""The one record rule: record_texts on single records (every format, every problem), the
same texts as load_pool gives for each record read from its own single-format file, and
load_pool(format="mixed") for files that mix formats."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

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
