"""``tritondiv stats`` on a real pool slice: the table, the JSON, the band errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tritondiv.cli import main

pytestmark = pytest.mark.shared_data


def test_stats_table_and_json(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "stats.json"
    argv = ["stats", str(shared_data / "gsm8k_train.jsonl.gz"), "--limit", "200",
            "--lo", "0.05x", "--hi", "0.5x", "--json", str(out), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "band: lo=0.05x -> {'response': 10}, hi=0.5x -> {'response': 100}" in printed
    assert "mid-band tokens (types)" in printed and "distinct-2" in printed
    data = json.loads(out.read_text())
    assert data["thresholds"] == {"lo": "0.05x", "hi": "0.5x"}
    assert data["pool"]["n_samples"] == 200
    resp = data["components"]["response"]
    assert (resp["lo"], resp["hi"]) == (10, 100) and resp["n_samples"] == 200
    # the default band is the API's: ints 10 and 500
    assert main([*argv[:4], "--json", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    assert json.loads(out.read_text())["thresholds"] == {"lo": 10, "hi": 500}


def test_stats_band_errors_are_one_line_and_name_the_pool(
    shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["stats", str(shared_data / "gsm8k_train.jsonl.gz"), "--limit", "100", "--no-progress"]
    assert main([*base, "--lo", "ten"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lo (--lo): band threshold 'ten'" in err
    assert main([*base, "--lo", "0.6x", "--hi", "50"]) == 2
    # found after tokenizing: the stage messages, then the one error line
    *stages, err = capsys.readouterr().err.splitlines()
    assert all(s.startswith("tritondiv stats: token statistics") for s in stages), stages
    assert err.startswith("tritondiv stats: error: ")
    assert "a pool of 100 samples" in err and "1,000,000" not in err


def test_stats_engine_options_are_checked_before_any_work(
    shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["stats", str(shared_data / "gsm8k_train.jsonl.gz"), "--limit", "50", "--no-progress"]
    assert main([*base, "--ray-address", "auto"]) == 2
    assert "--ray-address needs --engine ray" in capsys.readouterr().err
    assert main([*base, "--engine", "ray", "--ray-address", " "]) == 2
    assert "ray_address (--ray-address) is empty" in capsys.readouterr().err
    # the whitespace tokenizer numbers the whole pool's words: refused on Ray, before Ray starts
    assert main([*base, "--engine", "ray", "--tokenizer", "whitespace"]) == 2
    assert "whitespace tokenizer" in capsys.readouterr().err
    for bad in (["--engine", "spark"], ["--partitions", "2"]):  # stats selects nothing
        with pytest.raises(SystemExit) as exc:
            main([*base, *bad])
        assert exc.value.code == 2
    capsys.readouterr()


def test_engine_args_validate_like_the_api() -> None:
    from tritondiv.commands._options import EngineArgs

    assert EngineArgs().engine == "local" and not EngineArgs().on_ray
    assert EngineArgs("ray", "auto", 4).on_ray
    with pytest.raises(ValueError, match=r"engine \(--engine\) must be one of"):
        EngineArgs("spark")
    with pytest.raises(ValueError, match=r"partitions \(--partitions\) must be >= 1, got 0"):
        EngineArgs("ray", partitions=0)
    with pytest.raises(TypeError, match="partitions must be an int"):
        EngineArgs("ray", partitions=True)
    with pytest.raises(TypeError, match="engine must be a str"):
        EngineArgs(1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="--ray-address and --partitions need --engine ray"):
        EngineArgs("local", "auto", 2)


def test_no_cache_reaches_the_pool_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tritondiv.pool.readers.jsonl import STREAM_MIN_BYTES

    src = Path(__file__).resolve().parents[2] / "examples" / "data" / "gsm8k_300.jsonl"
    rows = [json.loads(line) for line in src.read_text(encoding="utf-8").splitlines()]
    pool = tmp_path / "pool.jsonl"
    with pool.open("w", encoding="utf-8") as fh:
        i = 0
        while fh.tell() < STREAM_MIN_BYTES + 1024:  # big enough to be streamed and cached
            for r in rows:
                fh.write(json.dumps({**r, "id": f"r{i}"}) + "\n")
                i += 1
    monkeypatch.setenv("TRITONDIV_CACHE", str(tmp_path / "cache"))
    base = ["stats", str(pool), "--component", "response", "--tokenizer", "whitespace"]
    assert main([*base, "--no-cache", "--no-progress"]) == 0
    assert not list((tmp_path / "cache").rglob("*.arrow"))
    assert main([*base, "--no-progress"]) == 0
    assert len(list((tmp_path / "cache" / "pools").glob("*.arrow"))) == 1
    capsys.readouterr()
