"""What users expect of the command line's outputs: ``--output-format``, ``--json -``,
``-q``/``-v``, the umask, and missing extras reported before any work.

Runs on the small real pool of ``examples/data`` (600 samples of four files in two record
formats: alpaca with ``response`` and GSM8K's question/answer).
"""

from __future__ import annotations

import importlib
import json
import os
import stat
import sys
from pathlib import Path

import pytest

from tritondiv.cli import main
from tritondiv.dataset import DATA_FILES, OUTPUT_FORMATS, read_dataset, verify_dataset

# The folder holding the tritondiv that this test imports (the installed one, with its
# compiled core), for child processes.
_PACKAGE_ROOT = str(Path(importlib.import_module("tritondiv").__file__ or "").resolve().parents[1])


EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "data"
SIZE = 30


def _select(out: Path, *extra: str) -> list[str]:
    return [
        "select", str(EXAMPLES), "--strategy", "response-micro", "--level", "0.5",
        "--size", str(SIZE), "--seed", "1", "--no-metrics", "--out", str(out), *extra,
    ]  # fmt: skip


def _ladder(out: Path, *extra: str) -> list[str]:
    return [
        "ladder", str(EXAMPLES), "--size", "20", "--levels", "2", "--strategies",
        "response-micro", "--no-metrics", "--no-report", "--out", str(out), *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def selected(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One `select` per output format, the same selection each time."""
    root = tmp_path_factory.mktemp("formats")
    outs = {}
    for fmt in OUTPUT_FORMATS:
        outs[fmt] = root / fmt
        assert main(["-q", *_select(outs[fmt], "--output-format", fmt)]) == 0
    return outs


def test_every_output_format_round_trips(selected: dict[str, Path]) -> None:
    ref = read_dataset(selected["jsonl"])
    assert len(ref) == SIZE and ref.ids == ref.manifest["ids"]  # type: ignore[index]
    from tritondiv.pool import load_pool

    pool_ids = load_pool(str(EXAMPLES)).ids
    assert ref.ids == [pool_ids[i] for i in ref.manifest["indices"]]  # type: ignore[index]
    for fmt, out in selected.items():
        assert sorted(os.listdir(out)) == sorted([DATA_FILES[fmt], "manifest.json"]), fmt
        assert verify_dataset(out) == (True, "ok"), fmt
        ds = read_dataset(out)
        man = ds.manifest or {}
        assert man["data"]["file"] == DATA_FILES[fmt] and man["data"]["format"] == fmt
        assert man["data"]["records"] == SIZE and man["ids"] == ref.ids
        assert (ds.ids, ds.instructions, ds.responses) == (
            ref.ids,
            ref.instructions,
            ref.responses,
        ), fmt


def test_the_data_files_hold_what_each_format_says(selected: dict[str, Path]) -> None:
    import pyarrow.parquet as pq

    ref = read_dataset(selected["jsonl"])
    table = pq.read_table(selected["parquet"] / "data.parquet")
    # every original column kept (alpaca and question/answer records mixed: nulls elsewhere)
    originals = {k for r in ref.records for k in r}
    assert originals <= set(table.column_names) and table.num_rows == SIZE
    rows = table.to_pylist()
    for row, rec in zip(rows, ref.records, strict=True):
        assert {k: v for k, v in row.items() if v is not None} == rec
    lines = (selected["messages"] / "data.messages.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert first == {
        "id": ref.ids[0],
        "messages": [
            {"role": "user", "content": ref.instructions[0]},
            {"role": "assistant", "content": ref.responses[0]},
        ],
    }
    pc = [json.loads(x) for x in (selected["prompt-completion"] / "data.prompt_completion.jsonl")
          .read_text().splitlines()]  # fmt: skip
    assert [r["id"] for r in pc] == ref.ids and set(pc[0]) == {"id", "prompt", "completion"}
    assert [r["prompt"] for r in pc] == ref.instructions


def test_metrics_read_every_format(
    selected: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    dirs = [str(selected[f]) for f in OUTPUT_FORMATS]
    argv = ["metrics", *dirs, "--no-embeddings", "--bleu-sample", "10", "--json", "-"]
    assert main(argv) == 0
    res = json.loads(capsys.readouterr().out)["datasets"]
    assert [r["n"] for r in res] == [SIZE] * len(dirs)
    want = {k: v for k, v in res[0]["response"].items()}
    for r in res[1:]:  # the same texts, the same figures
        assert r["response"] == want and r["strategy"] == "response-micro"
        assert r["coverage"]["own"] == res[0]["coverage"]["own"]


def test_sft_reads_every_format(selected: dict[str, Path]) -> None:
    from tritondiv.sft.data import load_pairs
    from tritondiv.sft.train import training_pairs

    ref = load_pairs(selected["jsonl"])
    for fmt, out in selected.items():
        assert load_pairs(out) == ref, fmt
        instructions, _, info = training_pairs(out)
        assert instructions == ref[0] and info["samples"] == SIZE
        assert info["sha256"] == (read_dataset(out).manifest or {})["data"]["sha256"]


def test_a_tampered_parquet_dataset_is_refused(selected: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    out = tmp_path / "ds"
    shutil.copytree(selected["parquet"], out)
    with open(out / "data.parquet", "ab") as fh:
        fh.write(b"\0")
    ok, why = verify_dataset(out)
    assert not ok and "data.parquet does not match the sha256" in why
    assert main(["metrics", str(out), "--no-embeddings"]) == 2


def test_json_dash_is_the_only_thing_on_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = {
        "env": ["env", "--json", "-"],
        "stats": ["stats", str(EXAMPLES), "--json", "-"],
        "select": _select(tmp_path / "sel", "--json", "-"),
        "ladder": _ladder(tmp_path / "lad", "--json", "-"),
    }
    for name, argv in runs.items():
        assert main(argv) == 0, name
        got = capsys.readouterr()
        data = json.loads(got.out)  # nothing else on stdout
        assert isinstance(data, dict), name
        if name == "select":
            assert data["data"]["file"] == "data.jsonl" and len(data["ids"]) == SIZE
            assert f"{tmp_path / 'sel'}: {SIZE} samples" in got.err  # the summary: stderr
        if name == "ladder":
            assert data["status"] == "finished" and len(data["datasets"]) == 2
            assert data["output_format"] == "jsonl"
        if name == "stats":
            assert data["pool"]["n_samples"] == 600 and "mid-band" in got.err
    # and a path still writes a file, atomically, the summary back on stdout
    assert main(_select(tmp_path / "sel", "--json", str(tmp_path / "m.json"))) == 0
    assert f"{SIZE} samples" in capsys.readouterr().out
    assert json.loads((tmp_path / "m.json").read_text())["size"] == SIZE


def test_json_dash_pipes_into_python(tmp_path: Path) -> None:
    """The README's pipe: ``tritondiv stats ... --json - | python -c 'json.load(...)'``."""
    import subprocess

    env = {**os.environ, "PYTHONPATH": _PACKAGE_ROOT}
    stats = subprocess.run(
        [sys.executable, "-m", "tritondiv.cli", "stats", str(EXAMPLES), "--json", "-"],
        capture_output=True, text=True, env=env, cwd="/", check=True,
    )  # fmt: skip
    load = subprocess.run(
        [sys.executable, "-c", "import json,sys; print(json.load(sys.stdin)['pool']['n_samples'])"],
        input=stats.stdout, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert load.stdout.strip() == "600"


class _Tty:
    """stderr that says it is a terminal (to see whether bars would be drawn)."""

    def __init__(self, inner: object) -> None:
        self.inner = inner

    def isatty(self) -> bool:
        return True

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_quiet_silences_info_and_bars(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import tritondiv.ladder as ladder_mod

    bars: list[bool] = []
    real = ladder_mod._StageBar.__init__

    def spy(self: object, total: int, enabled: bool) -> None:
        bars.append(enabled)
        real(self, total, False)  # type: ignore[arg-type]  # never draw in the test

    monkeypatch.setattr(ladder_mod._StageBar, "__init__", spy)
    monkeypatch.setattr(sys, "stderr", _Tty(sys.stderr))
    assert main(_select(tmp_path / "a")) == 0
    err = capsys.readouterr().err
    assert "tritondiv select: select response-micro level 0.5" in err  # INFO, stage name
    assert f"write response-micro ({SIZE} samples, jsonl)" in err  # and counts
    assert "debug" not in err
    assert main(["-q", *_select(tmp_path / "b")]) == 0
    got = capsys.readouterr()
    assert got.err == "" and got.out.startswith(f"{tmp_path / 'b'}: {SIZE} samples")
    assert bars == [True, False]  # a terminal: a bar; -q: none
    from tritondiv._log import progress_enabled

    assert progress_enabled(True)  # -q lasted for its command only
    # -q with --json -: the JSON on stdout, and nothing at all on stderr
    assert main(["-q", "stats", str(EXAMPLES), "--json", "-"]) == 0
    got = capsys.readouterr()
    assert got.err == "" and json.loads(got.out)["pool"]["n_samples"] == 600


def test_verbose_shows_debug(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-v", *_select(tmp_path / "a", "--output-format", "parquet")]) == 0
    err = capsys.readouterr().err
    assert " debug   tritondiv.cli: argv: -v select " in err
    assert f"debug   tritondiv.dataset: wrote {tmp_path / 'a' / 'data.parquet'}" in err
    with pytest.raises(SystemExit) as exc:
        main(["-q", "-v", "env"])
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_a_bad_output_format_is_an_argparse_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for cmd in (_select, _ladder):
        with pytest.raises(SystemExit) as exc:
            main(cmd(tmp_path / "x", "--output-format", "csv"))
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert "--output-format: invalid choice: 'csv'" in err and "prompt-completion" in err
    assert not (tmp_path / "x").exists()
    from tritondiv.commands._options import RunArgs

    with pytest.raises(ValueError, match=r"output_format \(--output-format\) must be one of"):
        RunArgs(output_format="csv")


def test_a_ladder_resumed_in_another_format_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "lad"
    assert main(["-q", *_ladder(out, "--output-format", "prompt-completion")]) == 0
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("data.prompt_completion.jsonl")}
    assert len(stamps) == 2
    assert main(["-q", *_ladder(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "written with --output-format prompt-completion, not jsonl" in err
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # nothing rewritten
    # the same format resumes: every level finished earlier, skipped
    assert main(_ladder(out, "--output-format", "prompt-completion")) == 0
    assert capsys.readouterr().err.count("finished earlier, skipped") == 2
    from tritondiv.dataset import read_ladder

    _, datasets = read_ladder(out)
    assert [len(read_dataset(d["path"])) for d in datasets] == [20, 20]
    # the report links each level's data file
    assert main(["-q", "report", str(out)]) == 0
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "level-0/data.prompt_completion.jsonl'" in html and "data.jsonl" not in html


def test_outputs_honour_the_umask(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = os.umask(0o027)
    try:
        for fmt in ("parquet", "messages"):
            out = tmp_path / fmt
            js = tmp_path / f"{fmt}.json"
            assert main(["-q", *_select(out, "--output-format", fmt, "--json", str(js))]) == 0
            for p in (out / DATA_FILES[fmt], out / "manifest.json", js):
                assert stat.S_IMODE(p.stat().st_mode) == 0o640, p
            assert stat.S_IMODE(out.stat().st_mode) == 0o750
        lad = tmp_path / "lad"
        assert main(["-q", *_ladder(lad, "--output-format", "parquet")]) == 0
        modes = {stat.S_IMODE(p.stat().st_mode) for p in lad.rglob("*") if p.is_file()}
        assert modes == {0o640}, modes
    finally:
        os.umask(old)
    capsys.readouterr()


def test_a_missing_extra_is_one_line_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tritondiv import _extras

    real = _extras._installed
    monkeypatch.setattr(
        _extras, "_installed", lambda m: m not in ("torch", "matplotlib") and real(m)
    )
    sel = ["select", str(EXAMPLES), "--strategy", "kcenter", "--level", "1", "--size", "5",
           "--out", str(tmp_path / "s"), "--output-format", "parquet", "--json", "-"]  # fmt: skip
    lad = [*_ladder(tmp_path / "l", "--output-format", "messages", "--json", "-")]
    lad.remove("--no-report")
    for argv, extra in ((sel, "embed"), (lad, "report")):
        assert main(argv) == 2
        got = capsys.readouterr()
        assert got.out == "" and len(got.err.strip().splitlines()) == 1, got.err
        assert f"pip install 'tritondiv[{extra}]'" in got.err
    assert not (tmp_path / "s").exists() and not (tmp_path / "l").exists()
