"""``tritondiv replay MANIFEST``: exit 0 with ``identical``, 1 naming the first differing
record, 2 when the pool changed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tritondiv.cli import main
from tritondiv.dataset import data_file

REPO = Path(__file__).resolve().parents[2]
POOL = REPO / "examples" / "data"


def test_replay_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pool = tmp_path / "pool.jsonl"
    shutil.copy(POOL / "gpteacher_codegen_100.jsonl", pool)
    sel = tmp_path / "sel"
    assert main(["select", str(pool), "--strategy", "response-micro", "--level", "1",
                 "--size", "40", "--out", str(sel), "--lo", "2", "--no-metrics",
                 "--no-progress"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["replay", str(sel / "manifest.json")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{sel}: identical (sha256 ") and out.count("\n") == 1
    assert main(["replay", str(sel), "--out", str(tmp_path / "again")]) == 0
    assert "identical" in capsys.readouterr().out
    assert data_file(tmp_path / "again").read_bytes() == data_file(sel).read_bytes()

    # a tampered data file: exit 1, the first differing record named
    path = data_file(sel)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[0], lines[1] = lines[1], lines[0]
    path.write_text("".join(lines), encoding="utf-8")
    assert main(["replay", str(sel)]) == 1
    out = capsys.readouterr().out
    assert f"{sel}: differs (" in out and "first differing record: 0" in out

    # a changed pool: exit 2, one line
    text = pool.read_text(encoding="utf-8").splitlines(keepends=True)
    rec = json.loads(text[0])
    rec["response"] = "changed"
    pool.write_text(json.dumps(rec) + "\n" + "".join(text[1:]), encoding="utf-8")
    assert main(["replay", str(sel)]) == 2
    err = capsys.readouterr().err
    last = err.splitlines()[-1]  # after the stage lines, one error line
    assert last.startswith("tritondiv replay: error: ") and "the pool changed since" in last
