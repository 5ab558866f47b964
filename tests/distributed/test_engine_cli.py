"""``--engine ray`` on the command line against ``--engine local`` on a real sharded pool:
the same stats table and JSON, the same selected datasets (ids in order, data.jsonl
bytes), and a ladder interrupted locally resumes on Ray, skipping its finished levels."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tritondiv.cli import main
from tritondiv.dataset import read_manifest
from tritondiv.ladder import LADDER_FILE, level_dir

pytestmark = [
    pytest.mark.slow,
    pytest.mark.shared_data,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*"),
]

SIZE = 150
STRATEGIES = ("response-micro", "instruction-micro")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _no_local_micro(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the local micro incidence fail: a Ray run must not reach it."""

    def refuse(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("the micro incidence was computed locally")

    monkeypatch.setattr("tritondiv.feature_store.micro_types", refuse)


def _ladder_argv(pool: Path, out: Path, *extra: str) -> list[str]:
    return [
        "ladder", str(pool), "--allow-empty", "--size", str(SIZE), "--levels", "3",
        "--strategies", ",".join(STRATEGIES), "--out", str(out), "--no-metrics",
        "--no-report", "--no-progress", *extra,
    ]  # fmt: skip


def _datasets(out: Path) -> dict[str, tuple[list[str], str]]:
    """path -> (ids in selection order, sha256 of data.jsonl) of every dataset of a ladder."""
    index = json.loads((out / LADDER_FILE).read_text())
    assert index["status"] == "finished"
    return {
        e["path"]: (read_manifest(out / e["path"])["ids"], _sha(out / e["path"] / "data.jsonl"))
        for e in index["datasets"]
    }


@pytest.fixture(scope="module")
def local_ladder(shard_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("local") / "ladder"
    assert main(_ladder_argv(shard_dir, out)) == 0
    return out


def test_stats_on_ray_prints_and_writes_what_the_local_run_does(
    ray_session: Any, shard_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["stats", str(shard_dir), "--allow-empty", "--component", "both",
            "--lo", "0.002x", "--hi", "0.1x", "--no-progress"]  # fmt: skip
    assert main([*base, "--json", str(tmp_path / "local.json")]) == 0
    local_out = capsys.readouterr().out
    assert main([*base, "--json", str(tmp_path / "ray.json"), "--engine", "ray"]) == 0
    ray_out = capsys.readouterr().out
    assert ray_out == local_out  # the same table, line for line
    local = json.loads((tmp_path / "local.json").read_text())
    ray = json.loads((tmp_path / "ray.json").read_text())
    assert local.pop("seconds") >= 0 and ray.pop("seconds") >= 0  # the one timing field
    assert ray == local  # pool fingerprint, tokenizer sha256, every figure
    assert local["pool"]["n_samples"] == 1500 + 700 + 2017
    resp = local["components"]["response"]
    assert resp["n_mid"] > 100 and resp["distinct"]["distinct_2"] > 0


def test_stats_on_ray_honours_limit(
    ray_session: Any, shard_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # --limit on Ray: the first N loaded samples are shipped to the cluster
    base = ["stats", str(shard_dir), "--allow-empty", "--limit", "900", "--no-progress"]
    assert main([*base, "--json", str(tmp_path / "local.json")]) == 0
    assert main([*base, "--json", str(tmp_path / "ray.json"), "--engine", "ray"]) == 0
    capsys.readouterr()
    local = json.loads((tmp_path / "local.json").read_text())
    ray = json.loads((tmp_path / "ray.json").read_text())
    local.pop("seconds"), ray.pop("seconds")
    assert ray == local and ray["pool"]["n_samples"] == 900


def test_select_on_ray_writes_the_local_dataset(
    ray_session: Any,
    shard_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = ["select", str(shard_dir), "--allow-empty", "--strategy", "instruction-micro",
            "--level", "0.5", "--size", "200", "--no-metrics", "--no-progress"]  # fmt: skip
    assert main([*base, "--out", str(tmp_path / "local")]) == 0
    _no_local_micro(monkeypatch)
    assert main([*base, "--out", str(tmp_path / "ray"), "--engine", "ray"]) == 0
    capsys.readouterr()
    local, ray = read_manifest(tmp_path / "local"), read_manifest(tmp_path / "ray")
    assert len(ray["ids"]) == 200 and ray["ids"] == local["ids"]
    assert (ray["k"], ray["coverage"], ray["n_types"]) == (
        local["k"],
        local["coverage"],
        local["n_types"],
    )
    assert _sha(tmp_path / "ray" / "data.jsonl") == _sha(tmp_path / "local" / "data.jsonl")


def test_ladder_on_ray_writes_the_local_datasets(
    ray_session: Any,
    shard_dir: Path,
    local_ladder: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _no_local_micro(monkeypatch)
    out = tmp_path / "ladder"
    assert main(_ladder_argv(shard_dir, out, "--engine", "ray")) == 0
    capsys.readouterr()
    ray, local = _datasets(out), _datasets(local_ladder)
    assert list(ray) == [level_dir(s, i) for s in STRATEGIES for i in range(3)]
    assert ray == local
    for s in STRATEGIES:  # a ladder: three different datasets per strategy
        assert len({ray[level_dir(s, i)][1] for i in range(3)}) == 3


def test_ladder_interrupted_locally_resumes_on_ray(
    ray_session: Any,
    shard_dir: Path,
    local_ladder: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tritondiv.ladder as ladder_mod

    out = tmp_path / "ladder"
    real_write = ladder_mod.write_dataset
    written: list[Path] = []

    def write_two_then_die(path: Path, *a: Any, **k: Any) -> Any:
        if len(written) == 2:
            raise KeyboardInterrupt  # the driver killed after two levels
        written.append(Path(path))
        return real_write(path, *a, **k)

    monkeypatch.setattr(ladder_mod, "write_dataset", write_two_then_die)
    assert main(_ladder_argv(shard_dir, out)) == 130
    monkeypatch.setattr(ladder_mod, "write_dataset", real_write)
    finished = [level_dir(STRATEGIES[0], 0), level_dir(STRATEGIES[0], 1)]
    assert written == [out / p for p in finished]
    stamps = {p: (out / p / "data.jsonl").stat().st_mtime_ns for p in finished}
    capsys.readouterr()

    _no_local_micro(monkeypatch)
    assert main(_ladder_argv(shard_dir, out, "--engine", "ray")) == 0
    err = capsys.readouterr().err
    for p in finished:
        assert f"{p}: finished earlier, skipped" in err
        assert (out / p / "data.jsonl").stat().st_mtime_ns == stamps[p]  # not rewritten
    assert f"{level_dir(STRATEGIES[0], 2)}: finished earlier" not in err
    assert _datasets(out) == _datasets(local_ladder)
