"""Small I/O helpers (tritondiv._io): atomic writes, modes, safe paths, leftovers."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tritondiv._io import (
    atomic_write,
    check_path_component,
    clean_stale_temporaries,
    load_npz,
    safe_join,
    save_npz_atomic,
    temporary_name,
    write_json_atomic,
)


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.mark.usefixtures("umask")
def test_outputs_honour_the_umask(tmp_path: Path) -> None:
    from tritondiv.dataset import write_dataset

    write_json_atomic(tmp_path / "a.json", {"x": 1})
    save_npz_atomic(tmp_path / "b.npz", x=np.arange(3))
    assert _mode(tmp_path / "a.json") == 0o644
    assert _mode(tmp_path / "b.npz") == 0o644
    out = tmp_path / "ds"
    write_dataset(out, [{"instruction": "q", "output": "a"}], {"strategy": "s"})
    assert _mode(out) == 0o755
    assert {p.name: _mode(p) for p in out.iterdir()} == {
        "data.jsonl": 0o644,
        "manifest.json": 0o644,
    }
    os.umask(0o077)
    write_json_atomic(tmp_path / "c.json", [])
    assert _mode(tmp_path / "c.json") == 0o600


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_write(target, "w", encoding="utf-8") as fh:
            fh.write("new, half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]
    with atomic_write(target, "wb") as fh:
        fh.write(b"new")
    assert target.read_bytes() == b"new"
    assert load_npz is not None


def test_safe_join_stays_below_its_root(tmp_path: Path) -> None:
    root = tmp_path / "out"
    root.mkdir()
    assert safe_join(root, "runs", "random", "level-0") == (root / "runs/random/level-0").resolve()
    assert safe_join(root, "runs/random/level-1") == (root / "runs/random/level-1").resolve()
    assert safe_join(root, "a/../b") == (root / "b").resolve()
    with pytest.raises(ValueError, match="leads outside"):
        safe_join(root, "runs", "../../x")
    for bad in ("../../../x", "..", "a/../../x"):
        with pytest.raises(ValueError, match="leads outside"):
            safe_join(root, bad)
    with pytest.raises(ValueError, match="is absolute"):
        safe_join(root, "/etc/passwd")
    for bad in ("", "a\x00b"):
        with pytest.raises(ValueError, match="empty or holds a NUL"):
            safe_join(root, bad)
    # a symbolic link below the root that points elsewhere does not lead out either
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(ValueError, match="leads outside"):
        safe_join(root, "link", "x")


def test_check_path_component() -> None:
    for good in ("random", "response-micro", "facility-location", "a.b_c+1", "0"):
        assert check_path_component(good) == good
    for bad in ("../../../x", "..", ".", ".hidden", "a/b", "a\\b", "", "-x", "a b", "x" * 129):
        with pytest.raises(ValueError, match="not a safe file name"):
            check_path_component(bad, "strategy name")
    with pytest.raises(TypeError, match="strategy name must be a str"):
        check_path_component(None, "strategy name")


def test_clean_stale_temporaries_keeps_live_and_young_ones(tmp_path: Path) -> None:
    import subprocess
    import sys

    with subprocess.Popen([sys.executable, "-c", "pass"]) as proc:
        proc.wait()
    dead = proc.pid
    mine = tmp_path / temporary_name("x")
    mine.write_text("")
    stale = tmp_path / f".x.tmp-{dead}-ab"
    stale.mkdir()
    young = tmp_path / f".y.old-{dead}-cd"
    young.write_text("")
    keep = tmp_path / "x.tmp-1-ab"  # not hidden: not ours
    keep.write_text("")
    for p in (mine, stale, keep):
        os.utime(p, (1e9, 1e9))
    assert clean_stale_temporaries(tmp_path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, young.name, keep.name])
    assert clean_stale_temporaries(tmp_path, min_age_s=0) == [young]
    assert clean_stale_temporaries(tmp_path / "missing") == []


@pytest.mark.usefixtures("umask")
def test_write_json_output_to_a_file_or_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json
    import sys

    from tritondiv._io import json_output_stream, write_json_output

    obj = {"a": [1, 2], "é": None}
    assert write_json_output("-", obj) == "stdout"
    assert json.loads(capsys.readouterr().out) == obj
    path = tmp_path / "sub" / "o.json"
    assert write_json_output(path, obj) == str(path)
    assert json.loads(path.read_text(encoding="utf-8")) == obj and _mode(path) == 0o644
    assert capsys.readouterr().out == ""
    assert [p.name for p in path.parent.iterdir()] == ["o.json"]  # no temporary left
    # the human summary moves to stderr only when the JSON takes stdout
    assert json_output_stream("-") is sys.stderr
    assert json_output_stream(path) is sys.stdout and json_output_stream(None) is sys.stdout
