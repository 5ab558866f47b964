"""Each command checks the extras it will need before it starts (one line, exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tritondiv import _extras
from tritondiv.cli import main
from tritondiv.commands._needs import extras_for
from tritondiv.feature_store import FeatureOptions


def test_extras_for_each_kind_of_run() -> None:
    opts = FeatureOptions()
    assert extras_for(["response-micro"], opts, metrics=False) == []
    assert extras_for(["response-micro"], opts, metrics=True) == ["embed"]
    assert extras_for(["instruction-meso"], opts, metrics=False) == ["embed"]
    assert extras_for(["kcenter"], opts, metrics=False, report=True) == ["embed", "report"]
    pre = FeatureOptions(embeddings_instruction="i.npy", embeddings_response="r.npy")
    assert extras_for(["response-macro", "kcenter"], pre, metrics=True) == []
    assert extras_for([], opts, metrics=False, default_pool=True) == ["demo"]


def test_a_missing_extra_stops_the_ladder_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = _extras._installed
    monkeypatch.setattr(_extras, "_installed", lambda m: m != "matplotlib" and real(m))
    pool = tmp_path / "pool.jsonl"
    pool.write_text('{"instruction": "a", "output": "b"}\n')
    out = tmp_path / "ladder"
    code = main(["ladder", str(pool), "--size", "1", "--strategies", "response-micro",
                 "--no-metrics", "--out", str(out)])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "pip install 'tritondiv[report]'" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()  # nothing was started


def test_report_needs_matplotlib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_extras, "_installed", lambda m: m != "matplotlib")
    assert main(["report", str(tmp_path)]) == 2
    assert "tritondiv[report]" in capsys.readouterr().err
