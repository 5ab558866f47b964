"""Replay (tritondiv.replay): a dataset rebuilt from its manifest is byte-identical; a
changed pool or a tampered data file is reported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tritondiv.cli import main
from tritondiv.dataset import data_file, read_manifest
from tritondiv.replay import replay

REPO = Path(__file__).resolve().parents[1]
POOL = REPO / "examples" / "data"
GSM8K_ROWS = 71_333  # first row of gsm8k_train.jsonl.gz in the shared embeddings
QUIET = ["--no-progress", "--no-metrics"]


def _select(out: Path, pool: Path | str = POOL, *extra: str) -> None:
    argv = ["select", str(pool), "--strategy", "response-micro", "--level", "0.5",
            "--size", "50", "--out", str(out), "--seed", "4", "--lo", "3", "--hi", "0.5x",
            *QUIET, *extra]  # fmt: skip
    assert main(argv) == 0


def test_a_micro_dataset_replays_byte_identical(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _select(tmp_path / "sel")
    capsys.readouterr()
    (res,) = replay(tmp_path / "sel" / "manifest.json")
    assert res.identical and res.path == tmp_path / "sel"
    assert res.sha256 == read_manifest(tmp_path / "sel")["data"]["sha256"]
    # --out keeps the rebuilt dataset: the same bytes
    (res,) = replay(tmp_path / "sel", out=tmp_path / "again")
    assert res.identical
    assert data_file(tmp_path / "again").read_bytes() == data_file(tmp_path / "sel").read_bytes()


def test_a_relative_pool_and_embedding_path_replay_from_another_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "work"
    shutil.copytree(POOL, work / "pool")
    rng = np.random.default_rng(3)
    np.save(work / "emb.npy", rng.standard_normal((600, 8)).astype(np.float32))
    monkeypatch.chdir(work)
    argv = ["select", "pool", "--strategy", "kcenter", "--level", "1", "--size", "30",
            "--out", "sel", "--embeddings-response", "emb.npy", *QUIET]  # fmt: skip
    assert main(argv) == 0
    man = read_manifest(work / "sel")
    assert man["pool"]["source"] == "pool" and man["workdir"] == str(work)
    monkeypatch.chdir(tmp_path)  # the recorded relative paths resolve against workdir
    (res,) = replay(work / "sel")
    assert res.identical, res.message
    capsys.readouterr()


@pytest.mark.shared_data
@pytest.mark.parametrize("strategy", ["kcenter", "facility-location"])
def test_an_embedding_strategy_replays_byte_identical(
    shared_data: Path, tmp_path: Path, strategy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    n = 200
    X = np.load(shared_data / "embeddings" / "minilm_response.f16.npy", mmap_mode="r")
    np.save(tmp_path / "emb.npy", np.asarray(X[GSM8K_ROWS : GSM8K_ROWS + n]))
    out = tmp_path / "sel"
    argv = ["select", str(shared_data / "gsm8k_train.jsonl.gz"), "--limit", str(n),
            "--strategy", strategy, "--level", "0.5", "--size", "50", "--out", str(out),
            "--embeddings-response", str(tmp_path / "emb.npy"), "--seed", "2", *QUIET]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    (res,) = replay(out / "manifest.json")
    assert res.identical, res.message
    # the embeddings are part of what is recorded: other embeddings give another dataset
    np.save(tmp_path / "emb.npy", np.asarray(X[GSM8K_ROWS + n : GSM8K_ROWS + 2 * n]))
    (res,) = replay(out)
    assert not res.identical and "first differing record" in res.message


def test_every_level_of_a_ladder_replays_byte_identical(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "lad"
    argv = ["ladder", str(POOL), "--strategies", "response-micro,instruction-micro", "--levels", "2",
            "--size", "40", "--out", str(out), "--no-report", "--lo", "3", *QUIET]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    results = replay(out / "ladder.json")
    assert [r.path.relative_to(out).as_posix() for r in results] == [
        "response-micro/level-0", "response-micro/level-1", "instruction-micro/level-0",
        "instruction-micro/level-1",
    ]  # fmt: skip
    assert all(r.identical for r in results), [r.message for r in results]
    # one level on its own replays too (through select_dataset)
    (res,) = replay(out / "response-micro" / "level-1")
    assert res.identical


def test_a_changed_or_missing_pool_file_fails_before_selecting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pool = tmp_path / "pool.jsonl"
    shutil.copy(POOL / "gsm8k_300.jsonl", pool)
    _select(tmp_path / "sel", pool)
    capsys.readouterr()
    lines = pool.read_text(encoding="utf-8").splitlines(keepends=True)
    rec = json.loads(lines[10])
    rec["answer"] += " (edited)"
    lines[10] = json.dumps(rec) + "\n"
    pool.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(ValueError, match="the pool changed since the dataset was made") as exc:
        replay(tmp_path / "sel")
    assert str(pool) in str(exc.value) and "300 samples" in str(exc.value)
    pool.unlink()
    with pytest.raises(FileNotFoundError, match=r"pool file .*pool.jsonl.* cannot be found"):
        replay(tmp_path / "sel")


def test_a_tampered_data_file_is_reported_as_differing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _select(tmp_path / "sel")
    capsys.readouterr()
    path = data_file(tmp_path / "sel")
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    rec = json.loads(lines[7])
    key = "response" if "response" in rec else "answer"
    rec[key] = "tampered"
    lines[7] = json.dumps(rec) + "\n"
    path.write_text("".join(lines), encoding="utf-8")
    (res,) = replay(tmp_path / "sel")
    assert not res.identical
    assert "does not match the sha256" in res.message
    assert "first differing record: 7" in res.message and "tampered" in res.message


def test_an_in_memory_pool_has_no_file_to_replay(tmp_path: Path) -> None:
    import tritondiv

    records = [{"instruction": f"q {i} about cats", "output": f"a {i % 9} cats"} for i in range(40)]
    sel = tritondiv.select_from(records, "response-micro", size=10, lo=1, progress=False)
    sel.write(tmp_path / "sel")
    with pytest.raises(ValueError, match="replay needs a file pool"):
        replay(tmp_path / "sel")


def test_replay_refuses_what_is_not_a_manifest(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        replay(tmp_path / "nothing")
    (tmp_path / "x.txt").write_text("hi", encoding="utf-8")
    with pytest.raises(ValueError, match=r"manifest\.json"):
        replay(tmp_path / "x.txt")


def test_a_dataset_of_the_python_api_from_a_pool_file_replays(tmp_path: Path) -> None:
    import tritondiv

    sel = tritondiv.select_from(
        str(POOL / "gsm8k_300.jsonl"), "response-micro", size=20, level=0.5, lo=2, progress=False
    )
    sel.write(tmp_path / "sel")
    assert read_manifest(tmp_path / "sel")["pool"]["path"] == str(POOL / "gsm8k_300.jsonl")
    (res,) = replay(tmp_path / "sel")
    assert res.identical, res.message


def test_an_api_dataset_whose_instruction_joins_several_fields_replays(tmp_path: Path) -> None:
    import tritondiv

    src = str(POOL / "gpteacher_codegen_100.jsonl")
    sel = tritondiv.select_from(
        src,
        "instruction-micro",
        size=15,
        level=1.0,
        lo=2,
        instruction=("instruction", "input"),
        response="response",
        progress=False,
    )
    sel.write(tmp_path / "sel")
    pool_info = read_manifest(tmp_path / "sel")["pool"]
    assert pool_info["instruction"] == ["instruction", "input"]
    (res,) = replay(tmp_path / "sel")
    assert res.identical, res.message


@pytest.mark.parametrize("fmt", ["parquet", "messages", "prompt-completion"])
def test_every_output_format_replays_byte_identical(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    _select(tmp_path / "sel", POOL, "--output-format", fmt)
    out = tmp_path / "lad"
    argv = ["ladder", str(POOL), "--strategies", "response-micro", "--levels", "2", "--size", "30",
            "--out", str(out), "--no-report", "--lo", "3", "--output-format", fmt, *QUIET]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    assert data_file(tmp_path / "sel").name != "data.jsonl"
    results = [*replay(tmp_path / "sel"), *replay(out / "ladder.json")]
    assert len(results) == 3
    assert all(r.identical for r in results), [r.message for r in results]
