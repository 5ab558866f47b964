"""``tritondiv metrics`` on a pool file: the printed table, the JSON, a missing dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tritondiv.cli import main

pytestmark = pytest.mark.shared_data


def test_metrics_of_a_pool_file(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = shared_data / "gsm8k_train.jsonl.gz"
    out = tmp_path / "m.json"
    argv = ["metrics", str(src), "--limit", "60", "--no-embeddings", "--bleu-sample", "20",
            "--json", str(out)]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    printed = captured.out
    assert f"{src}  (60 samples)" in printed
    assert printed.count("(self-BLEU on 20 texts)") == 2 and f"wrote {out}" in captured.err
    (res,) = json.loads(out.read_text())["datasets"]
    assert res["n"] == 60
    for comp in ("instruction", "response"):
        assert 0 < res[comp]["distinct_1"] <= 1 and res[comp]["mean_pairwise_distance"] is None


def test_metrics_of_a_missing_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # every dataset is checked before the first is measured
    (tmp_path / "a.jsonl").write_text('{"instruction": "q", "output": "a"}\n')
    assert main(["metrics", str(tmp_path / "a.jsonl"), str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tritondiv metrics: error:") and "does not exist" in err
    assert err.count("\n") == 1
