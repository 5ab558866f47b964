"""The HTML report as a person sees it: opened in headless Chromium, every image loads, the
console stays clean, and a screenshot is written (under the test's temporary folder).

Chromium is Debian's ``chromium`` package; ``make test`` installs it where it is missing
(``tools/ensure-chromium``). Without it the test skips with a reason.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tritondiv.dataset import write_dataset
from tritondiv.report import write_report

pytestmark = pytest.mark.slow

PNG = b"\x89PNG\r\n\x1a\n"


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("headless Chromium is not installed (make test installs Debian's chromium)")


def _ladder(root: Path) -> None:
    """Three strategies x three levels of real-looking manifests, with a source mix."""
    levels = [0.0, 0.5, 1.0]
    entries = []
    for s in ("response-micro", "instruction-macro", "random"):
        for i, p in enumerate(levels):
            grow = 1.0 + (p if s == "response-micro" else 0.1 * p)
            met = {
                comp: {
                    "distinct_1": 0.1 * grow,
                    "distinct_2": 0.3 * grow,
                    "token_entropy": 8.0 * grow,
                    "mean_pairwise_distance": 0.7,
                    "mean_length": 100.0 * grow,
                    "compression_ratio": 3.0 / grow,
                    "self_bleu": 0.4 / grow,
                    "self_bleu_sample": 50,
                    "n": 10,
                }
                for comp in ("instruction", "response")
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
                    "k": i + 1,
                    "k_min": 1,
                    "k_max": 3,
                    "n_types": 3,
                    "coverage": i + 1,
                    "coverage_fraction": (i + 1) / 3,
                    "ids": ["x"],
                    "sources": {"code.jsonl": 10 - 4 * i, "chat.jsonl": 4 * i},
                    "metrics": met,
                },
            )
    import json

    (root / "ladder.json").write_text(
        json.dumps(
            {
                "pool": {"fingerprint": "0123456789abcdef", "n_samples": 30},
                "size": 1,
                "levels": levels,
                "strategies": ["response-micro", "instruction-macro", "random"],
                "seed": 0,
                "datasets": entries,
                "timings": {"tokenize-response": 1.5, "select": 0.2},
            }
        )
    )


def _open(chromium: str, page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            chromium,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            "--window-size=1280,900",
            *args,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _console(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def test_report_in_a_browser(tmp_path: Path) -> None:
    chromium = _chromium()
    _ladder(tmp_path)
    page = write_report(tmp_path)
    html = page.read_text(encoding="utf-8")
    images = re.findall(r"<img src='([^']+)'", html)
    assert len(images) >= 3
    for name in images:
        assert (tmp_path / name).read_bytes()[:8] == PNG

    shot = tmp_path / "report-first-screen.png"
    run = _open(chromium, page, f"--screenshot={shot}")
    assert run.returncode == 0, run.stderr[-2000:]
    assert shot.read_bytes()[:8] == PNG and shot.stat().st_size > 20_000
    assert _console(run.stderr) == [], _console(run.stderr)

    dom = _open(chromium, page, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert _console(dom.stderr) == [], _console(dom.stderr)
    # the page leads with the summary, and it flags the confounds it was given
    assert dom.stdout.index("Summary") < dom.stdout.index("<img")
    assert "response length 100 → 200 tokens" in dom.stdout
    assert "source mix" in dom.stdout


def test_the_check_reports_a_broken_image(tmp_path: Path) -> None:
    """The console check is real: a report whose plot is missing logs the failure."""
    chromium = _chromium()
    _ladder(tmp_path)
    page = write_report(tmp_path)
    (tmp_path / "coverage.png").unlink()
    run = _open(chromium, page, "--dump-dom")
    assert any("image failed to load" in line and "coverage.png" in line
               for line in _console(run.stderr)), run.stderr[-2000:]  # fmt: skip
