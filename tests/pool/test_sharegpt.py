"""The embedded default pool: the incremental decoder on slices of the real (cut-off) ShareGPT
file, one full recovery per session (then the parquet cache), and load_pool(None)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import tritondiv.pool.sharegpt as dp
from tritondiv import Pool, PoolError, default_pool, load_pool
from tritondiv.sharegpt import (
    EXPECTED_CONVERSATIONS,
    EXPECTED_SAMPLES,
    SOURCE,
    recover_json_list,
    sharegpt_json_path,
)

HEAD_CHARS = 3_000_000  # a slice of the real file: ~400 conversations


@pytest.fixture(scope="module")
def head_text() -> str:
    with open(sharegpt_json_path(), encoding="utf-8") as fh:
        return fh.read(HEAD_CHARS)


@pytest.fixture(scope="module")
def head_records(head_text: str) -> list[object]:
    _, tail = recover_json_list(head_text)
    assert tail is not None
    return _reference_prefix(head_text[:tail])


@pytest.fixture(scope="session")
def full_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pool]:
    # The same per-session cache folder as conftest's autouse fixture (which is function
    # scoped, so not yet in force here): the recovery runs once per session.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRITONDIV_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        yield default_pool(progress=False)


def _reference_prefix(text: str) -> list[object]:
    """Whole elements of a cut-off list, by plain json: cut after the last complete element."""
    for end in range(len(text), 0, -1):
        if text[end - 1] != "}":
            continue
        try:
            return json.loads(text[:end] + "]")
        except json.JSONDecodeError:
            continue
    return []


def test_package_file_located_without_import() -> None:
    path = sharegpt_json_path()
    assert (
        path.name == "ShareGPT_V3_unfiltered_cleaned_split.json"
        and path.stat().st_size > 100_000_000
    )
    with open(path, "rb") as fh:  # the shipped file really is cut off: no closing bracket
        fh.seek(-64, 2)
        assert not fh.read().rstrip().endswith(b"]")
    code = (
        "import sys; from tritondiv.sharegpt import sharegpt_json_path; sharegpt_json_path(); "
        "print(sorted(m for m in sys.modules if m.startswith(('sharegpt', 'torch', 'datasets'))))"
    )
    out = subprocess.run(
        [sys.executable, "-P", "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_recover_slice_of_real_file(head_text: str, head_records: list[object]) -> None:
    records, tail = recover_json_list(head_text)
    assert tail is not None and 300 < len(records) == len(head_records)
    assert records == head_records
    assert records[0]["id"] == "QWJhYvA_0"
    # the tail is where the first incomplete element starts
    assert head_text[tail] == "{"
    with pytest.raises(json.JSONDecodeError):
        json.loads(head_text[tail:])


@pytest.mark.parametrize("cut", [1, 2, 17, 1000])
def test_recover_at_any_cut(head_text: str, head_records: list[object], cut: int) -> None:
    # cut the slice at several places inside its last element
    _, tail = recover_json_list(head_text)
    assert tail is not None
    records, t2 = recover_json_list(head_text[: tail + cut])
    assert t2 == tail and records == head_records


def test_recover_complete_and_malformed_lists() -> None:
    assert recover_json_list('[{"a": 1}, {"b": [2]}]') == ([{"a": 1}, {"b": [2]}], None)
    assert recover_json_list(" [ ] ") == ([], None)
    assert recover_json_list('[{"a": 1},\n ') == ([{"a": 1}], 12)  # cut between elements
    assert recover_json_list('[{"a": 1}, {"b"') == ([{"a": 1}], 11)
    with pytest.raises(PoolError, match="element 1 is not valid JSON") as err:
        recover_json_list('[{"a": 1},\n {"b" 2},\n {"c": 3}]', path="x.json")
    assert err.value.line == 2 and err.value.path == "x.json"
    with pytest.raises(PoolError, match="does not start with a JSON list"):
        recover_json_list('{"a": 1}')


@pytest.mark.slow
def test_full_default_pool(full_pool: Pool) -> None:
    pool = full_pool
    assert len(pool) == EXPECTED_SAMPLES == 17_390
    tail = [s for s in pool.skipped if "cut off" in s.reason]
    assert len(tail) == 1 and tail[0].position == f"record {EXPECTED_CONVERSATIONS}"
    # every recovered conversation is either a sample or a skipped record with its reason
    assert len(pool) + len(pool.skipped) - 1 == EXPECTED_CONVERSATIONS == 17_671
    reasons = {s.reason for s in pool.skipped} - {tail[0].reason}
    assert reasons == {
        "field 'conversations' has no non-empty user turn",
        "field 'conversations' has no non-empty assistant turn after the first user turn",
    }
    assert pool.source == [SOURCE] * len(pool)
    assert len(set(pool.ids)) == len(pool)
    assert pool.ids[0] == "QWJhYvA_0"
    # the file repeats 123 ids, all on skipped conversations: kept samples keep their own id
    assert pool.ids == [r["id"] for r in pool.records]
    assert pool.instruction[0].startswith(
        "Summarize the main ideas of Jeff Walker's Product Launch Formula"
    )
    assert pool.response[0].startswith(
        "Here are the main ideas of Jeff Walker's Product Launch Formula"
    )
    assert all(t.strip() for t in pool.instruction) and all(t.strip() for t in pool.response)


@pytest.mark.slow
def test_default_pool_records_are_verbatim(full_pool: Pool, head_records: list[dict]) -> None:
    reference = head_records
    sub = full_pool.subset(range(50))
    # the first 50 samples come from the first conversations of the file, in order
    by_id = {r["id"]: r for r in reference}
    for sample_id, rec in zip(sub.ids, sub.records, strict=True):
        assert rec == by_id[rec["id"]] and sample_id.split("#")[0] == rec["id"]
    # texts follow the conversation rules of tritondiv.pool
    first = sub.records[0]["conversations"]
    users = [t["value"] for t in first if t["from"] in ("human", "user") and t["value"].strip()]
    assert sub.instruction[0] == "\n\n".join(users)


@pytest.mark.slow
def test_default_pool_cache_is_used(full_pool: Pool, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = dp._cache_path(sharegpt_json_path())
    assert cache.is_file() and cache.parent.parent == Path(dp.cache_dir())

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(dp, "recover_json_list", boom)
    again = default_pool(progress=False)
    assert again.fingerprint == full_pool.fingerprint
    assert default_pool(limit=7).ids == full_pool.ids[:7]
    # load_pool(None) is the default pool, with its options
    assert load_pool(None, limit=3).instruction == full_pool.instruction[:3]
    first = load_pool(None, first_turn_only=True)
    assert first.ids == full_pool.ids
    assert all(
        f.strip() and full.startswith(f)
        for f, full in zip(first.instruction, full_pool.instruction, strict=True)
    )
    assert sum(f != full for f, full in zip(first.response, full_pool.response, strict=True)) > 1000
    with pytest.raises(ValueError, match="ShareGPT"):
        load_pool(None, format="alpaca")
    with pytest.raises(ValueError, match="limit"):
        default_pool(limit=-2)


@pytest.mark.slow
def test_public_default_pool_is_the_function(full_pool: Pool) -> None:
    import tritondiv

    assert tritondiv.default_pool is dp.default_pool
    assert tritondiv.default_pool(limit=2, progress=False).ids == full_pool.ids[:2]
