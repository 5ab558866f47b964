"""The HTML report: plots from manifests, without and with a ladder index."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tritondiv._io import save_npz_atomic
from tritondiv.cli import main
from tritondiv.dataset import write_dataset
from tritondiv.report import collect, write_report

PNG = b"\x89PNG\r\n\x1a\n"


def _fake_ladder(root: Path, strategies: list[str], levels: list[float], *, index: bool) -> None:
    rng = np.random.default_rng(0)
    entries = []
    for s in strategies:
        for i, p in enumerate(levels):
            met = {
                comp: {
                    "distinct_1": 0.1 + 0.1 * p,
                    "distinct_2": 0.3 + 0.2 * p,
                    "token_entropy": 8 + p,
                    "mean_pairwise_distance": 0.7 + 0.05 * p,
                    "mean_length": 100 + 50 * p + rng.normal(),
                    "compression_ratio": 3 - p,
                    "self_bleu": 0.4 - 0.2 * p,
                    "self_bleu_sample": 50,
                    "n": 10,
                }
                for comp in ("instruction", "response")
            }
            met["coverage"] = {
                "response-micro": {"covered": 10 + i, "n_types": 100, "fraction": (10 + i) / 100}
            }
            path = f"{s}/level-{i}"
            entries.append({"strategy": s, "level": p, "level_index": i, "path": path})
            write_dataset(
                root / path,
                [{"instruction": "q", "output": "a"}],
                {
                    "strategy": s,
                    "level": p,
                    "level_index": i,
                    "size": 1,
                    "seed": 0,
                    "k": i,
                    "k_min": 0,
                    "k_max": len(levels),
                    "n_types": 20,
                    "coverage": i,
                    "coverage_fraction": i / 20,
                    "ids": ["x"],
                    "metrics": met,
                },
            )
    if index:
        (root / "ladder.json").write_text(
            json.dumps(
                {
                    "pool": {"fingerprint": "abc", "n_samples": 5},
                    "size": 1,
                    "levels": levels,
                    "strategies": strategies,
                    "seed": 0,
                    "datasets": entries,
                    "timings": {"embed": 1.5},
                }
            )
        )
        counts = np.concatenate([np.full(5, 5000), np.arange(1, 2000)[::-1], np.zeros(10, int)])
        save_npz_atomic(root / "token_counts.npz", counts_instruction=counts, counts_response=counts,
                        band=np.array([10, 500]))  # fmt: skip


def test_report_from_a_ladder_index(tmp_path: Path) -> None:
    strategies = ["response-micro", "instruction-macro", "random"]
    _fake_ladder(tmp_path, strategies, [0.0, 0.5, 1.0], index=True)
    out = write_report(tmp_path)
    html = out.read_text(encoding="utf-8")
    for png in (
        "metrics_instruction.png",
        "metrics_response.png",
        "coverage.png",
        "token_band.png",
    ):
        assert (tmp_path / png).read_bytes()[:8] == PNG
        assert f"src='{png}'" in html
    assert html.count("<tr>") >= 9  # 9 datasets (+ header and timing rows)
    assert "response-micro/level-2/manifest.json" in html
    assert "response-micro/level-2/data.jsonl" in html
    assert "Self-BLEU sample size per dataset: 50" in html
    index, rows = collect(tmp_path)
    assert len(rows) == 9 and index["strategies"] == strategies


def test_report_from_select_outputs_and_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_ladder(tmp_path, ["kcenter"], [0.0, 1.0], index=False)
    assert main(["report", str(tmp_path)]) == 0
    assert str(tmp_path / "report.html") in capsys.readouterr().out
    assert (tmp_path / "coverage.png").read_bytes()[:8] == PNG
    assert not (tmp_path / "token_band.png").exists()  # no token counts without a ladder


def test_report_errors_name_the_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(FileNotFoundError, match=r"neither ladder\.json"):
        write_report(tmp_path)
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_report_shows_the_protocol_facts_per_level(tmp_path: Path) -> None:
    from tritondiv.report import _source_mix

    for i, p in enumerate([0.0, 1.0]):
        write_dataset(
            tmp_path / f"response-micro/level-{i}",
            [{"instruction": "q", "output": "a"}],
            {
                "strategy": "response-micro",
                "level": p,
                "level_index": i,
                "size": 10,
                "seed": 0,
                "k": 1 + i,
                "k_min": 1,
                "k_max": 2,
                "n_types": 2,
                "coverage": 1 + i,
                "coverage_fraction": (1 + i) / 2,
                "sampler": "uniform",
                "typeless": {"rule": "exclude", "count": 7, "excluded": 5},
                "length_band": {"band": [450, 550], "excluded": 12},
                "stratify": {"by": "source", "strata": []},
                "tokenizer": {"name": "smollm2", "sha256": "0123456789abcdef", "source": "x"},
                "sources": {"a.json": 6 - i, "b.json": 3 + i, "c.json": 1, "d.json": 0},
                "mean_response_tokens": 481.5 + i,
                "ids": ["x"],
            },
        )
    html = write_report(tmp_path).read_text(encoding="utf-8")
    assert "<td>smollm2 01234567</td>" in html
    assert "<td>7 (5)</td>" in html and "<td>481.5</td>" in html and "<td>482.5</td>" in html
    assert "a 60%<br>b 30%<br>c 10%" in html and "a 50%<br>b 40%<br>c 10%" in html
    assert "sampler: uniform" in html and "band (tokens): 450:550" in html
    assert "stratified by source" in html
    assert _source_mix({f"s{i}.json": 10 - i for i in range(5)}) == (
        "s0 25%<br>s1 22%<br>s2 20%<br>other 32%"
    )
    assert _source_mix(None) == "–"
