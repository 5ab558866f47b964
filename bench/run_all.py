"""Run every benchmark script in bench/ one after another (they print their tables and
write their sections of bench/RESULTS.md themselves).

Arguments are passed to every script; the ones they all take are ``--quick`` (a smoke run
of each, well under a minute apiece, writing nothing) and ``--no-write``:

    .venv/bin/python -P bench/run_all.py --quick
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    failed = []
    for script in scripts:
        print(f"== {script.name}", flush=True)
        rc = subprocess.call([sys.executable, "-P", str(script), *sys.argv[1:]], cwd=HERE.parent)
        if rc != 0:
            failed.append(script.name)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
