"""``make gpu-check``'s dry run (``GPU_CHECK_DRY=1``): every stage runs on the CPU at toy
sizes and both result files come back with the fields the GPU run fills."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "gpu_check.py"


def test_gpu_check_dry_run(tmp_path: Path) -> None:
    env = {**os.environ, "GPU_CHECK_DRY": "1", "OUT": str(tmp_path / "out")}
    run = subprocess.run(
        [sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    res = json.loads((tmp_path / "out" / "gpu-results.json").read_text())
    assert res["dry"] is True
    for name in ("install", "gpu_tests", "kernels", "sft"):
        assert res[name]["ok"], res[name]
    ops = {r["op"] for r in res["kernels"]["result"]["rows"]}
    assert {"nearest (cosine)", "top-k k=20 (kNN graph)", "mean pairwise distance"} <= ops
    assert any(op.startswith("k-means") for op in ops)
    sft = res["sft"]["result"]
    assert sft["plain"]["tokens_per_s"] > 0 and sft["tritondiv"]["tokens_per_s"] > 0
    # the same seeded model and batch: both losses start equal (response-only either way)
    assert sft["plain"]["loss_first"] == pytest.approx(sft["tritondiv"]["loss_first"], rel=1e-4)
    assert "skipped" in sft["liger"]  # no CUDA here
    md = (tmp_path / "out" / "gpu-results.md").read_text()
    assert "| nearest (cosine) |" in md and "| SFT variant |" in md
