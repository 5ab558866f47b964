"""``tritondiv report`` on a ladder written by ``tritondiv ladder``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tritondiv.cli import main

pytestmark = pytest.mark.shared_data


def test_report_of_a_cli_ladder(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "lad"
    argv = ["ladder", str(shared_data / "gsm8k_train.jsonl.gz"), "--limit", "100",
            "--size", "20", "--levels", "2", "--strategies", "response-micro", "--out", str(out),
            "--no-metrics", "--no-report", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    assert f"{out}: 2 datasets in" in capsys.readouterr().out
    assert not (out / "report.html").exists()
    assert main(["report", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out / "report.html")
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "response-micro" in html
    assert (out / "token_band.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_of_a_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tritondiv report: error:") and err.count("\n") == 1
