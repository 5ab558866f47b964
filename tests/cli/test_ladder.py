"""``tritondiv ladder``: the CLI and the API record the same options and resume each other."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tritondiv.cli import main
from tritondiv.dataset import read_manifest, verify_dataset
from tritondiv.ladder import LADDER_FILE, level_dir, run_ladder
from tritondiv.strategies import FeatureOptions

pytestmark = pytest.mark.shared_data

LIMIT = 150
SIZE = 20
STRATEGIES = "response-micro,instruction-micro"


def _argv(pool: Path, out: Path, *extra: str) -> list[str]:
    return [
        "ladder", str(pool), "--limit", str(LIMIT), "--size", str(SIZE), "--levels", "2",
        "--strategies", STRATEGIES, "--out", str(out), "--no-metrics", "--no-report",
        "--no-progress", *extra,
    ]  # fmt: skip


def _api(pool_path: Path, out: Path, **options: object) -> dict:
    from tritondiv.pool import load_pool

    pool = load_pool(str(pool_path), limit=LIMIT)
    return run_ladder(
        pool,
        SIZE,
        out,
        levels=2,
        strategies=STRATEGIES,
        options=FeatureOptions(progress=False, **options),  # type: ignore[arg-type]
        metrics=False,
        report=False,
    )


def _stamps(out: Path) -> dict[str, int]:
    index = json.loads((out / LADDER_FILE).read_text())
    return {
        e["path"]: (out / e["path"] / "data.jsonl").stat().st_mtime_ns for e in index["datasets"]
    }


@pytest.mark.parametrize("band", [(), ("--lo", "0.02x", "--hi", "0.5x")])
def test_api_and_cli_record_the_same_options_and_resume_each_other(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], band: tuple[str, ...]
) -> None:
    """Issue 10, defect 2: the CLI passed lo="10" where the API default is 10, so a ladder
    begun from one refused to resume from the other ("options differ: lo: 10 -> '10'")."""
    gsm = shared_data / "gsm8k_train.jsonl.gz"
    api_opts = {"lo": band[1], "hi": band[3]} if band else {}
    by_api, by_cli = tmp_path / "api", tmp_path / "cli"
    _api(gsm, by_api, **api_opts)
    assert main(_argv(gsm, by_cli, *band)) == 0
    capsys.readouterr()
    api_index = json.loads((by_api / LADDER_FILE).read_text())
    cli_index = json.loads((by_cli / LADDER_FILE).read_text())
    assert api_index["options"] == cli_index["options"]
    if not band:
        assert cli_index["options"]["lo"] == 10 and cli_index["options"]["hi"] == 500
    else:
        assert cli_index["options"]["lo"] == "0.02x"
    for s in STRATEGIES.split(","):
        for i in range(2):
            a = read_manifest(by_api / level_dir(s, i))
            c = read_manifest(by_cli / level_dir(s, i))
            assert a["options"] == c["options"]
            assert a["ids"] == c["ids"] and a["k"] == c["k"]

    # the CLI resumes the API's ladder: every level is skipped, nothing is rewritten
    before = _stamps(by_api)
    assert main(_argv(gsm, by_api, *band)) == 0
    err = capsys.readouterr().err
    assert err.count("finished earlier, skipped") == 4, err
    assert _stamps(by_api) == before
    # ... and the API resumes the CLI's
    before = _stamps(by_cli)
    again = _api(gsm, by_cli, **api_opts)
    assert again["status"] == "finished"
    assert _stamps(by_cli) == before
    for entry in again["datasets"]:
        assert verify_dataset(by_cli / entry["path"]) == (True, "ok")


def test_cli_ladder_refuses_changed_options_in_one_line(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gsm = shared_data / "gsm8k_train.jsonl.gz"
    out = tmp_path / "lad"
    assert main(_argv(gsm, out)) == 0
    capsys.readouterr()
    assert main(_argv(gsm, out, "--hi", "400")) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "options differ: hi: 500 -> 400" in err, err


def test_a_ladder_recorded_by_the_old_cli_resumes(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ladders begun before the fix recorded lo="10"/hi="500": they resume too."""
    gsm = shared_data / "gsm8k_train.jsonl.gz"
    out = tmp_path / "old"
    assert main(_argv(gsm, out)) == 0
    index_path = out / LADDER_FILE
    index = json.loads(index_path.read_text())
    index["options"].update(lo="10", hi="500")
    index_path.write_text(json.dumps(index))
    capsys.readouterr()
    before = _stamps(out)
    assert main(_argv(gsm, out)) == 0
    assert capsys.readouterr().err.count("finished earlier, skipped") == 4
    assert _stamps(out) == before
