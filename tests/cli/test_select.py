"""``tritondiv select`` and ``tritondiv metrics`` on every file of ../shared/data (bounded)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tritondiv.cli import main
from tritondiv.dataset import read_manifest, verify_dataset

pytestmark = pytest.mark.shared_data

LIMIT = 300
# file -> (first row in the shared embeddings, strategy exercised on it, extra options)
FILES = {
    "t0_50k.jsonl.gz": (0, "response-micro", []),
    "gpteacher_codegen.json.gz": (55_185, "instruction-macro", ["--topics", "12"]),
    "gpteacher_roleplay.json.gz": (59_720, "kcenter", ["--component", "instruction"]),
    "gpteacher_toolformer.json.gz": (61_643, "facility-location", []),
    "codealpaca_2k.json.gz": (69_316, "threshold", ["--allow-empty", "--tau", "0.8"]),
    "gsm8k_train.jsonl.gz": (71_333, "instruction-micro", ["--lo", "0.01x", "--hi", "0.5x"]),
}


def _embeddings(shared_data: Path, tmp: Path, start: int, n: int) -> list[str]:
    args = []
    for comp in ("instruction", "response"):
        X = np.load(shared_data / "embeddings" / f"minilm_{comp}.f16.npy", mmap_mode="r")
        path = tmp / f"{comp}.npy"
        np.save(path, np.asarray(X[start : start + n]))
        args += [f"--embeddings-{comp}", str(path)]
    return args


@pytest.mark.slow
def test_every_shared_file_through_select_and_metrics(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sorted(FILES) == sorted(p.name for p in shared_data.glob("*.gz"))
    outs = []
    for name, (start, strategy, extra) in FILES.items():
        tmp = tmp_path / name.split(".")[0]
        tmp.mkdir()
        emb = _embeddings(shared_data, tmp, start, LIMIT)
        out = tmp / "sel"
        argv = [
            "select", str(shared_data / name), "--limit", str(LIMIT), "--strategy", strategy,
            "--level", "0.5", "--size", "40", "--out", str(out), "--seed", "3",
            "--bleu-sample", "30", "--no-progress", *emb, *extra,
        ]  # fmt: skip
        assert main(argv) == 0, name
        man = read_manifest(out)
        assert verify_dataset(out) == (True, "ok")
        assert man["strategy"] == strategy and man["size"] == 40 and man["seed"] == 3
        assert len(man["ids"]) == 40 and len(set(man["ids"])) == 40
        assert man["k_min"] <= man["k"] <= man["k_max"] and man["coverage"] <= man["k"]
        assert man["pool"]["limit"] == LIMIT and man["pool"]["n_samples"] == LIMIT
        assert man["options"]["embeddings_response"].endswith("response.npy")
        assert man["metrics"]["response"]["n"] == 40
        assert man["versions"]["tritondiv"]
        lines = (out / "data.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(lines) == 40 and all(isinstance(json.loads(x), dict) for x in lines)
        # deterministic: the same command gives the same bytes
        again = tmp / "again"
        assert (
            main([*argv[: argv.index("--out") + 1], str(again), *argv[argv.index("--out") + 2 :]])
            == 0
        )
        assert (again / "data.jsonl").read_bytes() == (out / "data.jsonl").read_bytes()
        outs.append(str(out))
    report = tmp_path / "metrics.json"
    assert (
        main(["metrics", *outs, "--no-embeddings", "--bleu-sample", "30", "--json", str(report)])
        == 0
    )
    data = json.loads(report.read_text())["datasets"]
    assert len(data) == len(FILES)
    for res, (_name, (_s, strategy, _e)) in zip(data, FILES.items(), strict=True):
        assert res["n"] == 40 and res["strategy"] == strategy
        for comp in ("instruction", "response"):
            m = res[comp]
            assert 0 < m["distinct_1"] <= 1 and m["token_entropy"] > 0 and m["mean_length"] > 0
            assert m["self_bleu_sample"] == 30 and m["mean_pairwise_distance"] is None
        assert res["coverage"]["own"]["covered"] == read_manifest(res["dataset"])["coverage"]
    printed = capsys.readouterr().out
    assert "self-BLEU on 30 texts" in printed


@pytest.mark.slow
def test_metrics_with_embeddings_matches_the_selection_manifest(
    shared_data: Path, tmp_path: Path
) -> None:
    """Re-embedding with the packaged model reproduces the precomputed embeddings' metric."""
    emb = _embeddings(shared_data, tmp_path, 71_333, 100)
    out = tmp_path / "sel"
    argv = ["select", str(shared_data / "gsm8k_train.jsonl.gz"), "--limit", "100", "--strategy",
            "random", "--level", "1", "--size", "30", "--out", str(out), "--no-progress", *emb]  # fmt: skip
    assert main(argv) == 0
    res_path = tmp_path / "m.json"
    assert main(["metrics", str(out), "--json", str(res_path), "--bleu-sample", "30"]) == 0
    res = json.loads(res_path.read_text())["datasets"][0]
    man = read_manifest(out)
    for comp in ("instruction", "response"):
        got, want = res[comp], man["metrics"][comp]
        assert got["mean_pairwise_distance"] == pytest.approx(
            want["mean_pairwise_distance"], abs=2e-3
        )
        for key in (
            "distinct_1",
            "distinct_2",
            "token_entropy",
            "mean_length",
            "compression_ratio",
            "self_bleu",
        ):
            assert got[key] == pytest.approx(want[key], rel=1e-9), key


@pytest.mark.slow
def test_keyphrase_meso_from_the_cli(shared_data: Path, tmp_path: Path) -> None:
    """The offline default tagger end to end, and metrics embedding the selection (the
    model runs: small slice)."""
    out = tmp_path / "meso"
    argv = ["select", str(shared_data / "gsm8k_train.jsonl.gz"), "--limit", "40", "--strategy",
            "instruction-meso", "--level", "1", "--size", "10", "--out", str(out), "--no-progress",
            "--tag-max-words", "24", "--bleu-sample", "10"]  # fmt: skip
    assert main(argv) == 0
    man = read_manifest(out)
    assert man["n_types"] > 0 and man["coverage"] > 0 and len(man["ids"]) == 10
    assert man["options"]["tagger"] == "keyphrase"
    # without precomputed embeddings the metrics embed only the selected texts
    for comp in ("instruction", "response"):
        assert 0 < man["metrics"][comp]["mean_pairwise_distance"] < 2


def test_cli_errors_name_the_problem(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gsm = str(shared_data / "gsm8k_train.jsonl.gz")
    base = [
        "select",
        gsm,
        "--limit",
        "50",
        "--level",
        "0.5",
        "--out",
        str(tmp_path / "x"),
        "--no-progress",
    ]
    assert main([*base, "--strategy", "random", "--size", "51", "--no-metrics"]) == 2
    assert "smaller --size" in capsys.readouterr().err
    assert main([*base, "--strategy", "response-micro", "--size", "5", "--lo", "ten"]) == 2
    assert "band threshold 'ten'" in capsys.readouterr().err
    bad_emb = tmp_path / "bad.npy"
    np.save(bad_emb, np.zeros((7, 4), np.float32))
    assert (
        main([*base, "--strategy", "kcenter", "--size", "5", "--embeddings-response", str(bad_emb)])
        == 2
    )
    assert "bad.npy" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "--strategy", "response-nano", "--size", "5"])
    assert main(["metrics", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert (
        main(
            [
                "select",
                gsm,
                "--strategy",
                "random",
                "--level",
                "2",
                "--size",
                "5",
                "--out",
                str(tmp_path / "y"),
            ]
        )
        == 2
    )
    assert "--level" in capsys.readouterr().err


def test_metrics_reads_the_manifest_beside_a_data_file(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # codealpaca has empty outputs; a selection made with --allow-empty holds them, and
    # `metrics` on its data.jsonl (not only on its directory) reads them the same way
    src = shared_data / "codealpaca_2k.json.gz"
    out = tmp_path / "sel"
    emb = _embeddings(shared_data, tmp_path, 69_316, 2_017)
    argv = [
        "select", str(src), "--allow-empty", "--strategy", "random", "--level", "1",
        "--size", "2017", "--out", str(out), "--no-metrics", "--no-progress", *emb,
    ]  # fmt: skip
    assert main(argv) == 0
    lines = (out / "data.jsonl").read_text(encoding="utf-8").splitlines()
    assert any(not json.loads(x)["output"].strip() for x in lines)  # an empty text is in
    report = tmp_path / "m.json"
    args = ["--no-embeddings", "--bleu-sample", "20", "--json", str(report)]
    assert main(["metrics", str(out / "data.jsonl"), *args]) == 0
    by_file = json.loads(report.read_text())["datasets"][0]
    assert main(["metrics", str(out), *args]) == 0
    by_dir = json.loads(report.read_text())["datasets"][0]
    assert by_file["n"] == by_dir["n"] == 2017
    assert by_file["response"] == by_dir["response"] and by_file["strategy"] == "random"
    capsys.readouterr()


def _tiny_pool(path: Path, n: int = 30, bad_line: int | None = None) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            if i == bad_line:
                fh.write('{"instruction": 5}\n')
                continue
            rec = {"instruction": f"question {i} about cats", "output": f"answer {i % 7} cats"}
            fh.write(json.dumps(rec) + "\n")
    return path


def test_pool_options_map_onto_load_pool(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _tiny_pool(tmp_path / "pool.jsonl", bad_line=3)
    out = tmp_path / "sel"
    argv = ["select", str(src), "--skip-bad", "--limit", "20", "--strategy", "response-micro",
            "--level", "1", "--size", "5", "--out", str(out), "--lo", "2", "--hi", "0.9x",
            "--no-metrics", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "skipped 1 records:" in captured.err and f"{out}: 5 samples" in captured.out
    man = read_manifest(out)
    assert man["pool"] == {
        "fingerprint": man["pool"]["fingerprint"],
        "n_samples": 20,
        "source": str(src),
        "format": "auto",
        "first_turn_only": False,
        "skip_bad": True,
        "allow_empty": False,
        "limit": 20,
    }
    assert man["options"]["lo"] == 2 and man["options"]["hi"] == "0.9x"
    # without --skip-bad the bad record stops the load: one line naming the file and line
    assert main([a for a in argv if a != "--skip-bad"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pool.jsonl" in err and "line 4" in err


def test_the_output_folder_is_checked_before_the_pool_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import tritondiv.commands._options as options_mod
    import tritondiv.dataset as dataset_mod

    loaded: list[str] = []
    monkeypatch.setattr(options_mod.PoolArgs, "load", lambda self: loaded.append("pool"))

    def refuse(out: object, **_kw: object) -> Path:
        raise ValueError(f"{out} is not a dataset folder: pass another --out")

    monkeypatch.setattr(dataset_mod, "check_output_dir", refuse)
    src = _tiny_pool(tmp_path / "pool.jsonl")
    for command in (
        ["select", str(src), "--strategy", "random", "--level", "1", "--size", "5"],
        ["ladder", str(src), "--size", "5", "--levels", "2"],
    ):
        assert main([*command, "--out", str(tmp_path / "o"), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert "is not a dataset folder" in err and err.count("\n") == 1
    assert loaded == []


def test_a_dataset_of_a_mapped_pool_reads_back(tmp_path: Path) -> None:
    """`{query, output}` records selected with --instruction-field are read back (metrics)."""
    from tritondiv.dataset import read_dataset

    pool = tmp_path / "pool.jsonl"
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
    with open(pool, "w", encoding="utf-8") as fh:
        for i in range(40):
            q = " ".join(words[(i + j) % 6] for j in range(3))
            fh.write(json.dumps({"query": f"{q} {i}", "output": f"{q} answer {i % 7}"}) + "\n")
    out = tmp_path / "sel"
    argv = ["select", str(pool), "--instruction-field", "query", "--strategy", "response-micro",
            "--level", "1", "--size", "5", "--lo", "1", "--no-metrics", "--no-progress",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    ds = read_dataset(out)
    assert len(ds.records) == 5
    assert all(i.startswith(tuple(words)) for i in ds.instructions)
    assert main(["metrics", str(out), "--no-embeddings"]) == 0
