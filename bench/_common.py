"""What every bench script shares: paths, the timer, the load probe, the RESULTS.md writer.

The scripts run as ``.venv/bin/python -P bench/bench_<area>.py`` (``-P``: the installed
tritondiv, with its compiled core, is imported rather than the source folder), so they put
this folder on ``sys.path`` themselves before ``from _common import ...``.

* Paths: :data:`REPO`, :data:`BENCH`, :data:`SHARED` (the real data, overridable with
  ``TRITONDIV_SHARED_DATA``), :data:`OUT` (scratch outputs, git-ignored, overridable with
  ``TRITONDIV_BENCH_OUT``), :data:`RESULTS` (``TRITONDIV_BENCH_RESULTS`` writes elsewhere,
  e.g. a copy), and :data:`POOL_FILES` (the six shared files
  in the row order of the precomputed embeddings).
* The timer: :func:`median_time` (median wall and CPU time over repeats).
* The load probe: :class:`LoadProbe` (``uptime`` and load average before and after,
  machine facts).
* The writer: :func:`write_section` replaces one ``## Section`` (or one ``### Sub`` block
  inside a section) of bench/RESULTS.md atomically, with the command line and the load
  recorded; hand-written notes below the generated block are kept.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

__all__ = [
    "BENCH",
    "OUT",
    "POOL_FILES",
    "REPO",
    "RESULTS",
    "SHARED",
    "LoadProbe",
    "Timed",
    "add_common_arguments",
    "command_line",
    "machine_facts",
    "median_time",
    "replace_section",
    "require_shared",
    "uptime",
    "write_section",
]

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SHARED = Path(os.environ.get("TRITONDIV_SHARED_DATA", REPO.parent / "shared" / "data"))
OUT = Path(os.environ.get("TRITONDIV_BENCH_OUT", BENCH / "out"))
RESULTS = Path(os.environ.get("TRITONDIV_BENCH_RESULTS", BENCH / "RESULTS.md"))
# The six files of the shared pool, in the row order of ../shared/data/embeddings/*.npy.
POOL_FILES = (
    "t0_50k.jsonl.gz",
    "gpteacher_codegen.json.gz",
    "gpteacher_roleplay.json.gz",
    "gpteacher_toolformer.json.gz",
    "codealpaca_2k.json.gz",
    "gsm8k_train.jsonl.gz",
)


def require_shared(*relative: str) -> Path:
    """Return ``SHARED / relative`` or exit with a one-line message naming what is missing."""
    path = SHARED.joinpath(*relative)
    if not path.exists():
        raise SystemExit(
            f"{path} is absent: this benchmark needs the shared data "
            "(set TRITONDIV_SHARED_DATA to its folder)"
        )
    return path


# ---- the timer ----------------------------------------------------------------------------


class Timed(NamedTuple):
    """Median wall seconds, median process CPU seconds (all threads) and the last output."""

    wall: float
    cpu: float
    out: Any


def median_time(fn: Callable[[], Any], repeats: int = 1, *, warmup: int = 0) -> Timed:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times; return the medians.

    The CPU time counts every thread of this process: on a loaded machine the wall time
    grows while the CPU time does not, so both are reported.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for _ in range(warmup):
        fn()
    walls: list[float] = []
    cpus: list[float] = []
    out: Any = None
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return Timed(statistics.median(walls), statistics.median(cpus), out)


# ---- the load probe -----------------------------------------------------------------------


def uptime() -> str:
    """The ``uptime`` line (or the load average when the command is missing)."""
    try:
        out = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout
    except OSError:
        out = ""
    if out.strip():
        return out.strip()
    one, five, fifteen = os.getloadavg()
    return f"load average: {one:.2f}, {five:.2f}, {fifteen:.2f}"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def machine_facts() -> dict[str, Any]:
    """Cores (usable by this process), memory, CPU model, Python and numpy versions, and
    tritondiv's threads when it imports."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    facts: dict[str, Any] = {
        "cores": cores,
        "memory_gib": _memory_gib(),
        "cpu": _cpu_model(),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }
    try:
        import numpy

        facts["numpy"] = numpy.__version__
    except ImportError:
        pass
    try:
        import tritondiv

        facts["tritondiv_threads"] = tritondiv.num_threads()
        facts["openmp"] = tritondiv.openmp_enabled()
    except Exception:  # the core is not built: the facts stay useful without it
        pass
    return facts


@dataclass
class LoadProbe:
    """The load average when the probe was made and (after :meth:`stop`) at the end."""

    before: str = field(default_factory=uptime)
    before_avg: tuple[float, float, float] = field(default_factory=os.getloadavg)
    after: str | None = None
    after_avg: tuple[float, float, float] | None = None
    facts: dict[str, Any] = field(default_factory=machine_facts)

    def stop(self) -> LoadProbe:
        """Record the load now (the end of the run); returns ``self``."""
        self.after = uptime()
        self.after_avg = os.getloadavg()
        return self

    @property
    def shared(self) -> bool:
        """True when the 1-minute load was above the cores' count minus one at either end
        (other jobs shared the machine: times are upper bounds)."""
        limit = max(1.0, self.facts["cores"] - 1.0)
        ones = [self.before_avg[0]] + ([self.after_avg[0]] if self.after_avg else [])
        return max(ones) > limit

    def describe(self) -> str:
        """One line for RESULTS.md: the load before and after, and what it means."""
        if self.after is None:
            self.stop()
        note = (
            "other jobs shared the machine during this run, so times are upper bounds"
            if self.shared
            else "about this run alone on the machine"
        )
        return f"Load: before `{self.before}`; after `{self.after}` ({note})."

    def machine_line(self) -> str:
        """One line for RESULTS.md: the machine facts."""
        f = self.facts
        size = f"{f['cores']} cores" + (f", {f['memory_gib']:.0f} GiB" if f["memory_gib"] else "")
        parts = [size, f["cpu"], f"Python {f['python']}"]
        if "numpy" in f:
            parts.append(f"numpy {f['numpy']}")
        if "tritondiv_threads" in f:
            parts.append(f"tritondiv {f['tritondiv_threads']} threads (OpenMP {f['openmp']})")
        return "Machine: " + "; ".join(parts) + "."


# ---- the command line and the common options --------------------------------------------


def command_line(argv: Sequence[str] | None = None, env: Iterable[str] = ()) -> str:
    """The command that ran, as someone would type it from the repository root:
    ``.venv/bin/python -P bench/<script> <args>``, prefixed by the given environment
    variables that are set (e.g. ``OPENBLAS_CORETYPE``)."""
    argv = list(sys.argv if argv is None else argv)
    script = Path(argv[0]).resolve() if argv else BENCH
    try:
        shown = script.relative_to(REPO).as_posix()
    except ValueError:
        shown = str(script)
    prefix = [f"{k}={shlex.quote(os.environ[k])}" for k in env if k in os.environ]
    return " ".join([*prefix, ".venv/bin/python -P", shown, *map(shlex.quote, argv[1:])])


def add_common_arguments(ap: argparse.ArgumentParser) -> None:
    """``--quick`` (tiny shapes, a smoke run of well under a minute that never writes
    RESULTS.md) and ``--no-write`` (print only), the same in every script."""
    ap.add_argument(
        "--quick",
        action="store_true",
        help="tiny shapes: a smoke run (well under a minute; implies --no-write)",
    )
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")


# ---- the RESULTS.md writer ----------------------------------------------------------------

_BEGIN = "<!-- generated by {script}: everything down to the end mark is rewritten -->"
_END = "<!-- end of the generated part; notes written by hand go below -->"


def _block(text: str, heading: str, start: int = 0, end: int | None = None) -> tuple[int, int]:
    """Span ``(a, b)`` of the block whose heading line starts with ``heading`` inside
    ``text[start:end]``: from the heading line to the next heading of the same or a
    higher level (or ``end``). ``(-1, -1)`` when absent."""
    end = len(text) if end is None else end
    level = len(heading) - len(heading.lstrip("#"))
    m = re.compile(rf"^{re.escape(heading)}[^\n]*\n?", re.M).search(text, start, end)
    if m is None:
        return -1, -1
    nxt = re.compile(rf"^#{{1,{level}}} ", re.M).search(text, m.end(), end)
    return m.start(), nxt.start() if nxt else end


def replace_section(
    text: str, heading: str, generated: str, *, script: str, within: str | None = None
) -> str:
    """Return ``text`` with the generated part of the block ``heading`` replaced.

    ``heading`` is a heading line or its beginning (``"## Token statistics"``, or
    ``"### Chunked response-only loss"`` with ``within="## SFT"``). Inside that block the
    part between the generated marks is replaced and the rest (hand-written notes) kept;
    a block without marks is replaced whole (its heading line kept); a missing block is
    appended at the end of ``within`` (or of the file) with ``heading`` as its heading.
    """
    lo, hi = 0, len(text)
    if within is not None:
        lo, hi = _block(text, within)
        if lo < 0:
            text = text.rstrip("\n") + f"\n\n{within}\n"
            lo, hi = _block(text, within)
    begin = _BEGIN.format(script=script)
    body = f"{begin}\n\n{generated.strip()}\n\n{_END}\n"
    a, b = _block(text, heading, lo, hi)
    if a < 0:
        new = f"{heading}\n\n{body}"
        head = text[:hi].rstrip("\n")
        return head + "\n\n" + new + ("\n" + text[hi:].lstrip("\n") if text[hi:].strip() else "")
    block = text[a:b]
    head_end = block.index("\n") + 1 if "\n" in block else len(block)
    heading_line, rest = block[:head_end], block[head_end:]
    m = re.search(r"<!-- generated by [^\n]*-->\n.*?" + re.escape(_END) + r"\n?", rest, re.S)
    if m:
        rest = rest[: m.start()] + body + rest[m.end() :]
    else:
        rest = "\n" + body
    new_block = heading_line.rstrip("\n") + "\n" + rest.rstrip("\n") + "\n"
    tail = text[b:]
    return text[:a] + new_block + ("\n" + tail if tail else "")


def write_section(
    heading: str,
    generated: str,
    *,
    load: LoadProbe | None = None,
    command: str | None = None,
    within: str | None = None,
    path: Path = RESULTS,
) -> None:
    """Replace the generated part of ``heading`` in bench/RESULTS.md, atomically.

    The block written is: ``Command: `<command line>` (<UTC time>).``, the machine facts,
    ``generated``, and the load before/after (``load`` is stopped here if it was not).
    The file is rewritten through a temporary file renamed over it
    (:func:`tritondiv._io.atomic_write`), so a failed run never leaves a half-written
    RESULTS.md.
    """
    from tritondiv._io import atomic_write

    command = command or command_line()
    script = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "a bench script"
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    parts = [f"Command: `{command}` ({when})."]
    if load is not None:
        parts.append(load.machine_line())
    parts.append(generated.strip())
    if load is not None:
        parts.append(load.describe())
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    new = replace_section(text, heading, "\n\n".join(parts), script=script, within=within)
    with atomic_write(path, "w", encoding="utf-8") as fh:
        fh.write(new)
