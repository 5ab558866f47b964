"""The streamed .jsonl path and its memory-mapped pool cache (tritondiv.pool.stream)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import tritondiv.pool.readers.jsonl as jsonl
import tritondiv.pool.stream as stream
from tritondiv.pool import load_pool

# The folder holding the tritondiv that this test imports (the installed one, with its
# compiled core), for child processes.
_PACKAGE_ROOT = str(Path(importlib.import_module("tritondiv").__file__ or "").resolve().parents[1])


REPO = Path(__file__).resolve().parents[2]


def _rows(n: int = 3000) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {"id": f"r{i % 2900}", "instruction": f"do {i} ü " * 8, "output": f"done {i} ✓ " * 8}
        for i in range(n)
    ]
    rows[17]["output"] = ""  # bad records: skipped with their lines
    rows[n * 5 // 6]["instruction"] = None
    return rows


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


@pytest.fixture
def streamed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every .jsonl streamed (and cached, in a cache folder of the test's own), in small
    steps (lines cut across them)."""
    monkeypatch.setenv("TRITONDIV_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(jsonl, "STREAM_MIN_BYTES", 0)
    monkeypatch.setattr(jsonl, "_SCAN_STEP", 1 << 14)


def _entries() -> list[Path]:
    return sorted(stream.cache_folder().glob("jsonl-*.arrow"))


def _same(a: Any, b: Any) -> None:
    for name in ("ids", "instruction", "response", "source"):
        assert getattr(a, name) == getattr(b, name), name
    assert a.skipped == b.skipped
    assert a.fingerprint == b.fingerprint
    assert a.records == b.records


def _count_steps(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = stream.steps

    def counted(*args: Any) -> Any:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(stream, "steps", counted)
    return calls


def test_a_cache_hit_gives_the_same_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, streamed: None
) -> None:
    path = tmp_path / "p.jsonl"
    rows = _rows()
    _write(path, rows)
    calls = _count_steps(monkeypatch)
    first = load_pool(path, skip_bad=True)
    assert len(calls) == 1 and len(_entries()) == 1
    import pyarrow as pa

    allocated = pa.total_allocated_bytes()
    again = load_pool(path, skip_bad=True)
    assert len(calls) == 1  # read from the cache: no step parsed
    # the mapped columns are views of the cache file, not copies in Arrow's memory pool
    texts = sum(c.nbytes for c in again.instruction.arrow.chunks + again.response.arrow.chunks)
    assert pa.total_allocated_bytes() - allocated < texts / 4
    _same(again, first)
    # ... and equal what the in-memory and json paths give
    monkeypatch.setattr(jsonl, "STREAM_MIN_BYTES", 1 << 40)
    in_memory = load_pool(path, skip_bad=True)
    _same(again, in_memory)
    assert [s.position for s in again.skipped] == ["line 18", "line 2501"]
    assert again.ids[2898] == "r0#2"  # the id rule on a hit (row 2900; two rows skipped)
    assert len(load_pool(rows, skip_bad=True)) == len(again)
    # other options are other entries
    monkeypatch.setattr(jsonl, "STREAM_MIN_BYTES", 0)
    assert len(load_pool(path, skip_bad=True, allow_empty=True)) == len(rows) - 1
    assert len(_entries()) == 2


def test_a_changed_file_is_a_miss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, streamed: None
) -> None:
    path = tmp_path / "p.jsonl"
    rows = _rows()
    _write(path, rows)
    calls = _count_steps(monkeypatch)
    load_pool(path, skip_bad=True)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # same bytes, new mtime
    load_pool(path, skip_bad=True)
    assert len(calls) == 2 and len(_entries()) == 1  # the older state's entry is gone
    rows[5]["output"] = "a longer answer"  # another size
    _write(path, rows)
    pool = load_pool(path, skip_bad=True)
    assert len(calls) == 3 and len(_entries()) == 1
    assert pool.response[5] == "a longer answer"
    assert pool.records[5] == rows[5]


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty"])
def test_a_damaged_cache_file_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, streamed: None, damage: str
) -> None:
    path = tmp_path / "p.jsonl"
    _write(path, _rows())
    calls = _count_steps(monkeypatch)
    ref = load_pool(path, skip_bad=True, cache=False)
    load_pool(path, skip_bad=True)
    (entry,) = _entries()
    data = bytearray(entry.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[len(data) // 3] ^= 0x20  # a text byte: still valid Arrow, wrong text
    else:
        data = bytearray()
    entry.write_bytes(bytes(data))
    pool = load_pool(path, skip_bad=True)
    assert len(calls) == 3  # rebuilt, not trusted
    _same(pool, ref)
    (rebuilt,) = _entries()
    assert rebuilt.read_bytes() != bytes(data)
    _same(load_pool(path, skip_bad=True), ref)
    assert len(calls) == 3


def test_cache_false_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, streamed: None
) -> None:
    path = tmp_path / "p.jsonl"
    _write(path, _rows())
    folder = stream.cache_folder()
    before = sorted(folder.rglob("*")) if folder.exists() else []
    pool = load_pool(path, skip_bad=True, cache=False)
    assert (sorted(folder.rglob("*")) if folder.exists() else []) == before == []
    assert len(pool) == 2998
    with pytest.raises(TypeError, match="cache="):
        load_pool(path, cache="no")  # type: ignore[arg-type]


def test_two_processes_loading_at_once_both_get_the_pool(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    rows = _rows(20000)
    _write(path, rows)
    go = tmp_path / "go"
    child = textwrap.dedent(
        """
        import json, sys, time
        from pathlib import Path
        import tritondiv.pool.readers.jsonl as jsonl
        from tritondiv.pool import load_pool
        jsonl.STREAM_MIN_BYTES = 0
        jsonl._SCAN_STEP = 1 << 15
        go = Path(sys.argv[2])
        while not go.exists():
            time.sleep(0.005)
        pool = load_pool(sys.argv[1], skip_bad=True)
        print(json.dumps([pool.fingerprint, len(pool), pool.records[-1]]))
        """
    )
    cache = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": _PACKAGE_ROOT, "TRITONDIV_CACHE": str(cache)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", child, str(path), str(go)],
            cwd="/",
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    go.touch()
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    ref = load_pool(path, skip_bad=True, cache=False)
    for out, _ in outs:
        assert json.loads(out) == [ref.fingerprint, len(ref), rows[-1]]
    names = sorted(p.name for p in (cache / "pools").iterdir())
    assert len(names) == 1 and names[0].startswith("jsonl-"), names  # no torn or stray file


def test_a_mapped_pool_round_trips_through_select(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, streamed: None, shared_data: Path
) -> None:
    import gzip
    import itertools

    from tritondiv.feature_store import FeatureOptions
    from tritondiv.ladder import select_dataset

    with gzip.open(shared_data / "gsm8k_train.jsonl.gz", "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in itertools.islice(fh, 1200)]
    rows = [{"id": f"g{i}", **r} for i, r in enumerate(rows)]
    path = tmp_path / "p.jsonl"
    _write(path, rows)
    load_pool(path)
    mapped = load_pool(path)  # a hit: the columns are the mapped file's
    plain = load_pool(path, cache=False)
    results = []
    for name, pool in (("mapped", mapped), ("plain", plain)):
        out = tmp_path / name
        man = select_dataset(
            pool,
            "response-micro",
            0.5,
            100,
            out,
            options=FeatureOptions(lo=2, hi=200, cache=False),
            seed=3,
            metrics=False,
        )
        results.append((man["ids"], (out / "data.jsonl").read_bytes()))
    assert results[0] == results[1]
    ids, data = results[0]
    assert len(ids) == 100
    by_id = {r["id"]: r for r in rows}
    written = [json.loads(line) for line in data.decode().splitlines()]
    assert [r["id"] for r in written] == ids
    assert all(r == by_id[r["id"]] for r in written)
