"""The fuzzer of tritondiv._core (fuzz_core.py beside this file), bounded for ``make test``.

``make fuzz`` runs the same driver with many more examples (TRITONDIV_FUZZ_EXAMPLES). Every
entry point runs in its own subprocess, so a crash fails the test with the input that
caused it instead of killing pytest.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import tritondiv
from tritondiv import _core

FUZZ = Path(__file__).with_name("fuzz_core.py")
# examples per entry point here (keeps the whole file well under a minute on 2 cores)
EXAMPLES = int(os.environ.get("TRITONDIV_FUZZ_EXAMPLES", "60"))
NOT_FUZZED = {"num_threads", "max_threads"}  # no arguments


def _fuzz(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    root = str(Path(tritondiv.__file__).resolve().parent.parent)  # the tritondiv under test
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, str(FUZZ), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd="/",  # the child imports the tritondiv under test, never a source folder in cwd
    )


def test_the_fuzzer_covers_every_entry_point() -> None:
    proc = _fuzz("--list")
    assert proc.returncode == 0, proc.stderr
    listed = set(proc.stdout.split())
    public = {n for n in dir(_core) if not n.startswith("_") and callable(getattr(_core, n))}
    assert listed | NOT_FUZZED == public


def test_every_entry_point_survives_the_fuzzer(tmp_path: Path) -> None:
    proc = _fuzz("--examples", str(EXAMPLES), "--keep", str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-20000:] + proc.stderr[-5000:]
    assert f"x {EXAMPLES} examples" in proc.stdout and ": 0 failed" in proc.stdout


def test_the_fuzzer_reports_a_crash_with_its_input(tmp_path: Path) -> None:
    # the driver's own entry point that raises SIGSEGV on some inputs
    proc = _fuzz("--entries", "_selfcheck_crash", "--examples", "50", "--keep", str(tmp_path))
    assert proc.returncode == 1
    out = proc.stdout
    # plain: killed by the signal; under ASan (`make sanitize`) its handler reports the
    # SEGV and exits with status 1
    assert "FAIL _selfcheck_crash: child killed by SIGSEGV" in out or (
        "FAIL _selfcheck_crash: child exit status 1" in out and "SEGV" in out
    )
    assert "input: _selfcheck_crash(" in out and "crashes alone too" in out
    saved = tmp_path / "crash-_selfcheck_crash.pkl"
    assert saved.exists()
    again = _fuzz("--replay", str(saved))
    assert again.returncode in (-11, 1)
