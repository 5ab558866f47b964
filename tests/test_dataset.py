"""The dataset folder (tritondiv.dataset): write, verify, read back, and nothing lost.

Issue 10: a dataset selected from a pool folder of several formats is read back by every
reader. Issue 16: a failed rewrite leaves the earlier dataset intact, writers lock the
folder, a tampered dataset is refused, the output location is checked before any work,
stale temporaries of killed runs are cleaned.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest

import tritondiv.dataset as dataset_mod
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
    with pytest.raises(FileNotFoundError, match=r"holds no data file \(one of data\.jsonl, "):
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


# ------------------------------------------------------------------ issue 16: nothing lost
def _finished(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    out = tmp_path / "ds"
    write_dataset(out, ALPACA, _manifest())
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(before) == [DATA_FILE, MANIFEST_FILE]
    return out, before


def _assert_intact(out: Path, before: dict[str, bytes]) -> None:
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert verify_dataset(out) == (True, "ok")
    # no temporary or moved-aside copy is left beside it
    assert sorted(p.name for p in out.parent.iterdir() if p.name.startswith(".")) == [".ds.lock"]


def _enospc(*_a: Any, **_k: Any) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_while_writing_the_data_leaves_the_earlier_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, before = _finished(tmp_path)
    monkeypatch.setattr(dataset_mod.os, "fsync", _enospc)
    with pytest.raises(OSError) as info:
        write_dataset(out, PROMPT_COMPLETION, _manifest(strategy="other"))
    assert type(info.value) is OSError and info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    _assert_intact(out, before)


def test_a_full_disk_while_writing_the_manifest_leaves_the_earlier_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, before = _finished(tmp_path)
    monkeypatch.setattr(dataset_mod, "write_json_atomic", _enospc)
    with pytest.raises(OSError) as info:
        write_dataset(out, PROMPT_COMPLETION, _manifest(strategy="other"))
    assert type(info.value) is OSError and info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    _assert_intact(out, before)


def test_a_record_that_cannot_be_written_leaves_the_earlier_dataset(tmp_path: Path) -> None:
    out, before = _finished(tmp_path)
    bad = [ALPACA[0], {"instruction": "lone \ud800 surrogate", "output": "x"}]
    with pytest.raises(DatasetError, match=r"record 1 .*not valid Unicode"):
        write_dataset(out, bad, _manifest())
    with pytest.raises(DatasetError, match=r"record 0 .*not JSON serializable"):
        write_dataset(out, [{"instruction": "q", "output": object()}], _manifest())
    _assert_intact(out, before)
    # a new folder is not created either
    with pytest.raises(DatasetError):
        write_dataset(tmp_path / "new", bad, _manifest())
    assert not (tmp_path / "new").exists()


def test_a_failed_swap_puts_the_earlier_dataset_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, before = _finished(tmp_path)
    real = os.rename
    calls: list[str] = []

    def rename(src: Any, dst: Any) -> None:
        calls.append(Path(dst).name)
        if len(calls) == 2:  # the new folder into place
            raise OSError(errno.EIO, "I/O error")
        real(src, dst)

    monkeypatch.setattr(dataset_mod.os, "rename", rename)
    with pytest.raises(OSError) as info:
        write_dataset(out, PROMPT_COMPLETION, _manifest())
    assert info.value.errno == errno.EIO and calls[1] == "ds" and len(calls) == 3
    monkeypatch.undo()
    _assert_intact(out, before)


def test_a_rewrite_replaces_the_dataset_whole(tmp_path: Path) -> None:
    out, _before = _finished(tmp_path)
    man = write_dataset(out, PROMPT_COMPLETION, _manifest(strategy="other"))
    assert read_manifest(out) == man and man["strategy"] == "other"
    assert verify_dataset(out) == (True, "ok")
    assert read_dataset(out).records == PROMPT_COMPLETION
    assert sorted(p.name for p in tmp_path.iterdir()) == [".ds.lock", "ds"]


# ------------------------------------------------------------------ issue 16: one writer
HOLD = """
import sys
from tritondiv.dataset import dataset_lock
with dataset_lock(sys.argv[1]):
    print("locked", flush=True)
    sys.stdin.readline()
"""


def test_two_writers_of_one_folder_take_turns(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "ds"
    env = {**os.environ, "PYTHONPATH": str(Path(dataset_mod.__file__).parents[1])}
    with subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    ) as holder:
        assert holder.stdout is not None and holder.stdin is not None
        try:
            assert holder.stdout.readline().strip() == "locked"
            with pytest.raises(DatasetBusyError) as info:
                write_dataset(out, ALPACA, _manifest())
            assert str(out) in str(info.value) and f"pid {holder.pid}" in str(info.value)
            assert not out.exists()
            holder.stdin.write("\n")
            holder.stdin.flush()
            # the second writer waits for the first to finish
            with dataset_lock(out, timeout=120):
                write_dataset(out, ALPACA, _manifest())  # re-entrant in one thread
            assert holder.wait(timeout=120) == 0
        finally:
            if holder.poll() is None:
                holder.kill()
    assert verify_dataset(out) == (True, "ok")
    with pytest.raises(ValueError, match="timeout"):
        with dataset_lock(out, timeout=-1):
            pass


# ------------------------------------------------------------------ issue 16: trust
def test_a_dataset_whose_data_does_not_match_its_manifest_is_refused(tmp_path: Path) -> None:
    from tritondiv.metrics import dataset_file_metrics
    from tritondiv.sft.data import load_pairs

    out, _before = _finished(tmp_path)
    data = out / DATA_FILE
    data.write_text(data.read_text(encoding="utf-8").replace("hello", "HELLO"), encoding="utf-8")
    for read in (
        read_dataset,
        lambda p: dataset_file_metrics(p, embed=False),
        load_pairs,
    ):
        with pytest.raises(DatasetError, match=rf"{data}.*does not match the sha256") as info:
            read(out)
        assert isinstance(info.value, ValueError)
    with pytest.raises(DatasetError, match="does not match"):
        read_dataset(data)
    assert read_dataset(out, verify=False).responses == ["5", "HELLO"]


# ------------------------------------------------------------------ issue 16: where to write
def test_check_output_dir_refuses_bad_locations_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(OutputDirError, match="is a file"):
        check_output_dir(a_file)
    with pytest.raises(OutputDirError, match="which is a file"):
        check_output_dir(a_file / "sub" / "ds")
    for empty in ("", "  "):
        with pytest.raises(OutputDirError, match="is empty"):
            check_output_dir(empty)
    with pytest.raises(OutputDirError, match="file system root"):
        check_output_dir("/")
    monkeypatch.chdir(tmp_path)
    for here in (".", tmp_path, tmp_path.parent):
        with pytest.raises(OutputDirError, match=r"holds\) the current folder"):
            check_output_dir(here)
    assert check_output_dir("new") == Path("new")
    with pytest.raises(TypeError, match="str or path"):
        check_output_dir(3)  # type: ignore[arg-type]

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    _jsonl(foreign / DATA_FILE, ALPACA)
    with pytest.raises(OutputDirError, match=r"holds a data\.jsonl that is not a tritondiv"):
        check_output_dir(foreign)
    (foreign / MANIFEST_FILE).write_text(json.dumps({"name": "someone else's"}))
    with pytest.raises(OutputDirError, match="no manifest of ours"):
        check_output_dir(foreign)
    with pytest.raises(OutputDirError, match="not a ladder's"):
        check_output_dir(foreign, ladder=True)
    # the API checks too, and touches nothing
    before = {p.name: p.read_bytes() for p in foreign.iterdir()}
    with pytest.raises(OutputDirError):
        write_dataset(foreign, ALPACA, _manifest())
    assert {p.name: p.read_bytes() for p in foreign.iterdir()} == before

    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(OutputDirError, match=r"other files than a dataset \(notes\.txt\)"):
        write_dataset(other, ALPACA, _manifest())
    assert check_output_dir(other, ladder=True) == other  # a ladder folder may hold others
    assert (other / "notes.txt").read_text() == "mine"

    # unwritable (simulated: the tests may run as root, who writes anywhere)
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(
        dataset_mod.os, "access", lambda p, m: Path(p) != locked and real_access(p, m)
    )
    with pytest.raises(OutputDirError, match=rf"{locked} is not writable"):
        check_output_dir(locked)
    with pytest.raises(OutputDirError, match=rf"cannot create the dataset folder .*: {locked}"):
        check_output_dir(locked / "a" / "b")
    monkeypatch.undo()

    # fine: new, nested new, empty, or a finished dataset of ours
    assert check_output_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    (tmp_path / "empty").mkdir()
    assert check_output_dir(tmp_path / "empty") == tmp_path / "empty"
    out, _ = _finished(tmp_path)
    assert check_output_dir(out) == out


# ------------------------------------------------------------------ issue 16: leftovers
def _dead_pid() -> int:
    import subprocess
    import sys

    with subprocess.Popen([sys.executable, "-c", "pass"]) as proc:
        proc.wait()
    return proc.pid


def test_a_write_cleans_the_temporaries_of_killed_runs(tmp_path: Path) -> None:
    dead = _dead_pid()
    old = 1_000_000_000.0  # 2001
    stale_dir = tmp_path / f".ds.tmp-{dead}-0badc0de"
    stale_dir.mkdir()
    (stale_dir / DATA_FILE).write_text("{}\n")
    stale_old = tmp_path / f".other.old-{dead}-00ff"
    stale_old.mkdir()
    stale_file = tmp_path / f".ladder.json.tmp-{dead}-1234abcd"
    stale_file.write_text("{")
    young = tmp_path / f".ds.tmp-{dead}-feedbeef"  # just written: maybe another host's
    young.mkdir()
    alive = tmp_path / ".ds.tmp-1-cafe"  # pid 1 is alive
    alive.mkdir()
    unrelated = tmp_path / ".ds.tmp-notapid-abcd"
    unrelated.mkdir()
    for p in (stale_dir, stale_old, stale_file, alive, unrelated):
        os.utime(p, (old, old))
    write_dataset(tmp_path / "ds", ALPACA, _manifest())
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(["ds", ".ds.lock", young.name, alive.name, unrelated.name])


def test_an_unfinished_level_of_a_ladder_of_ours_may_be_rewritten(tmp_path: Path) -> None:
    level = tmp_path / "random" / "level-0"
    level.mkdir(parents=True)
    _jsonl(level / DATA_FILE, ALPACA)  # its manifest is missing: a level cut short
    with pytest.raises(OutputDirError, match="no manifest of ours"):
        check_output_dir(level)
    entry = {"strategy": "random", "level": 0.0, "level_index": 0, "path": "random/level-0"}
    (tmp_path / LADDER_FILE).write_text(json.dumps({"datasets": [entry]}))
    assert check_output_dir(level) == level
    write_dataset(level, PROMPT_COMPLETION, _manifest())
    assert verify_dataset(level) == (True, "ok")
    with pytest.raises(OutputDirError, match="no manifest of ours"):
        other = tmp_path / "random" / "level-1"  # not in the index
        other.mkdir()
        _jsonl(other / DATA_FILE, ALPACA)
        check_output_dir(other)


def test_a_dataset_left_aside_by_a_run_killed_mid_swap_is_put_back(tmp_path: Path) -> None:
    out, before = _finished(tmp_path)
    aside = tmp_path / f".ds.old-{_dead_pid()}-0123abcd"
    os.rename(out, aside)  # killed between "rename old aside" and "rename new in"
    write_dataset(tmp_path / "sibling", PROMPT_COMPLETION, _manifest())
    assert not aside.exists()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # a copy aside whose folder exists again is an ordinary leftover: removed once stale
    write_dataset(out, ALPACA, _manifest())
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".ds.lock",
        ".sibling.lock",
        "ds",
        "sibling",
    ]


def test_package_versions_name_each_distribution_or_none() -> None:
    import numpy as np

    from tritondiv.dataset import package_versions, versions

    got = package_versions(("numpy", "no-such-distribution-tritondiv"))
    assert got == {"numpy": np.__version__, "no-such-distribution-tritondiv": None}
    assert list(versions())[:3] == ["tritondiv", "python", "numpy"]


# ------------------------------------------------------------------ issue 11: output formats
def _samples(mixed_pool_dir: Path) -> Any:
    """Every sample of the three-format pool, as the Pool ``write_dataset`` takes."""
    pool = load_pool(str(mixed_pool_dir))
    return pool.subset(list(range(len(pool))))


@pytest.mark.parametrize("fmt", ["parquet", "messages", "prompt-completion"])
def test_every_output_format_reads_back_like_jsonl(
    mixed_pool_dir: Path, tmp_path: Path, fmt: str
) -> None:
    from tritondiv.dataset import DATA_FILES

    samples = _samples(mixed_pool_dir)
    man = _manifest(ids=list(samples.ids))
    write_dataset(tmp_path / "jsonl", samples, man)
    written = write_dataset(tmp_path / fmt, samples, man, output_format=fmt)
    assert written["data"]["file"] == DATA_FILES[fmt] and written["data"]["format"] == fmt
    assert sorted(os.listdir(tmp_path / fmt)) == sorted([DATA_FILES[fmt], "manifest.json"])
    assert verify_dataset(tmp_path / fmt) == (True, "ok")
    ref, ds = read_dataset(tmp_path / "jsonl"), read_dataset(tmp_path / fmt)
    assert ds.ids == ref.ids == list(samples.ids)  # the pool's ids (c1, then file:row)
    assert ds.instructions == ref.instructions == list(samples.instruction)
    assert ds.responses == ref.responses == list(samples.response)
    # the data file alone (no manifest beside it is needed for the TRL formats)
    alone = tmp_path / f"alone-{DATA_FILES[fmt]}"
    alone.write_bytes((tmp_path / fmt / DATA_FILES[fmt]).read_bytes())
    if fmt != "parquet":
        assert read_dataset(alone).responses == ref.responses
    # find_datasets and check_output_dir know the folder as ours
    assert [p.name for p, _ in find_datasets(tmp_path)] == sorted(["jsonl", fmt])
    assert check_output_dir(tmp_path / fmt) == tmp_path / fmt


def test_output_format_errors_name_the_problem(mixed_pool_dir: Path, tmp_path: Path) -> None:
    from tritondiv.dataset import check_output_format

    samples = _samples(mixed_pool_dir)
    with pytest.raises(ValueError, match=r"must be one of jsonl, parquet, messages, prompt-"):
        write_dataset(tmp_path / "a", samples, _manifest(), output_format="csv")
    with pytest.raises(TypeError, match="output_format must be a str"):
        check_output_format(1)
    with pytest.raises(TypeError, match=r"needs the selected samples as a Pool"):
        write_dataset(tmp_path / "b", ALPACA, _manifest(), output_format="messages")
    # a conversation leaves empty turns out: an empty response cannot be a message
    pool = load_pool([{"instruction": "q", "output": " "}], allow_empty=True)
    with pytest.raises(DatasetError, match=r"sample 0 .*response is empty.*prompt-completion"):
        write_dataset(tmp_path / "c", pool, _manifest(), output_format="messages")
    # prompt-completion keeps it, and reads it back with the pool's allow_empty
    write_dataset(
        tmp_path / "d",
        pool,
        _manifest(pool={"allow_empty": True}),
        output_format="prompt-completion",
    )
    assert read_dataset(tmp_path / "d").responses == [" "]
    # parquet: a field of two types cannot be a column
    with pytest.raises(DatasetError, match=r"field 'output' cannot be a column.*jsonl"):
        write_dataset(
            tmp_path / "e",
            [{"instruction": "q", "output": "a"}, {"instruction": "r", "output": 3}],
            _manifest(),
            output_format="parquet",
        )
    assert not any((tmp_path / n).exists() for n in "abce")


def test_a_folder_with_a_foreign_data_file_is_refused(tmp_path: Path) -> None:
    for name in ("data.parquet", "data.messages.jsonl"):
        out = tmp_path / name.replace(".", "_")
        out.mkdir()
        (out / name).write_text("x")
        with pytest.raises(OutputDirError, match=rf"holds a {name} that is not a tritondiv"):
            check_output_dir(out)
        with pytest.raises(OutputDirError, match=rf"holds a {name} that is not a ladder's"):
            check_output_dir(out, ladder=True)


def test_a_manifest_naming_another_file_is_not_trusted(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    write_dataset(out, ALPACA, _manifest())
    man = read_manifest(out)
    man["data"]["file"] = "../elsewhere.jsonl"
    (out / "manifest.json").write_text(json.dumps(man))
    ok, why = verify_dataset(out)
    assert not ok and "names the data file '../elsewhere.jsonl'" in why


def test_rewriting_in_another_format_replaces_the_data_file(
    mixed_pool_dir: Path, tmp_path: Path
) -> None:
    samples = _samples(mixed_pool_dir)
    out = tmp_path / "ds"
    write_dataset(out, samples, _manifest(), output_format="parquet")
    write_dataset(out, samples, _manifest(), output_format="messages")
    assert sorted(os.listdir(out)) == ["data.messages.jsonl", "manifest.json"]
    assert verify_dataset(out) == (True, "ok")
