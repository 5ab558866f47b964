"""``tritondiv run RECIPE``: runs the steps, ``--dry-run`` prints the plan, a bad recipe is
one error line (exit 2) written before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tritondiv.cli import main
from tritondiv.dataset import data_file

REPO = Path(__file__).resolve().parents[2]
POOL = REPO / "examples" / "data"

RECIPE = f"""\
pool: {{source: {POOL}, limit: 300}}
defaults: {{seed: 1, metrics: false, lo: 2, progress: false}}
steps:
  - select: {{strategy: instruction-micro, level: 0, size: 30, out: out/sel}}
  - metrics: {{datasets: [out/sel], no-embeddings: true, bleu-sample: 20, json: out/m.json}}
"""


def test_run_runs_the_steps_and_logs_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE, encoding="utf-8")
    assert main(["run", str(recipe)]) == 0
    captured = capsys.readouterr()
    assert "step 1/2 select strategy=instruction-micro" in captured.err
    assert "step 2/2 metrics" in captured.err
    assert f"{tmp_path}/out/sel: 30 samples" in captured.out
    res = json.loads((tmp_path / "out" / "m.json").read_text(encoding="utf-8"))
    assert res["datasets"][0]["n"] == 30
    # the same as the command
    assert main(["select", str(POOL), "--limit", "300", "--strategy", "instruction-micro",
                 "--level", "0", "--size", "30", "--out", str(tmp_path / "cli"), "--seed", "1",
                 "--no-metrics", "--lo", "2", "--no-progress"]) == 0  # fmt: skip
    assert data_file(tmp_path / "cli").read_bytes() == data_file(tmp_path / "out/sel").read_bytes()


def test_dry_run_prints_the_plan_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE, encoding="utf-8")
    assert main(["run", "--dry-run", str(recipe)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"recipe {recipe}: 2 steps"
    assert out[1] == f"pool: {POOL} (format=auto limit=300), loaded once"
    assert out[3].startswith("step 1/2 select strategy=instruction-micro level=0.0 size=30")
    assert not (tmp_path / "out").exists()


def test_a_bad_recipe_is_one_line_naming_the_key_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE.replace("bleu-sample", "bleu-samples"), encoding="utf-8")
    assert main(["run", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"tritondiv run: error: recipe {recipe}: step 2 (metrics), line 5: ")
    assert "unknown key 'bleu_samples'" in err and "bleu_sample" in err
    assert not (tmp_path / "out").exists()
    assert main(["run", str(tmp_path / "none.yaml")]) == 2
    assert "none.yaml does not exist" in capsys.readouterr().err
