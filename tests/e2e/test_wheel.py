"""The wheel end to end: built once, installed into a fresh virtual environment with its
dependencies from the package index and no compiler on PATH, then ``tritondiv stats`` run
from it on a tiny jsonl.

What it pins: the wheel carries the compiled ``_core`` and the package data; installing it
compiles nothing (``--only-binary=:all:`` and a PATH holding only the new environment's
``bin``: no cmake, no c++); the core command works with the core dependencies alone (no
torch, no extras).

The wheel is ``dist/*.whl`` when ``make dist`` left one newer than every source file,
otherwise one built here with ``pip wheel --no-build-isolation`` (incremental: the CMake
tree in build/ is reused). Skipped with a reason when the source tree, the build tools or
a package index are not available.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("csrc", "python", "tritondiv", "CMakeLists.txt", "pyproject.toml")
PY_TAG = f"cp{sys.version_info.major}{sys.version_info.minor}"

WORDS = (
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho "
    "sigma tau upsilon phi chi psi omega"
).split()


def _run(cmd: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)


def _newest_source() -> float:
    newest = 0.0
    for name in SOURCES:
        path = REPO / name
        files = [path] if path.is_file() else path.rglob("*")
        for f in files:
            if f.is_file() and "__pycache__" not in f.parts and not f.name.endswith(".so"):
                newest = max(newest, f.stat().st_mtime)
    return newest


def _fresh_dist_wheel() -> Path | None:
    wheels = sorted((REPO / "dist").glob(f"tritondiv-*-{PY_TAG}-{PY_TAG}-*.whl"))
    if wheels and min(w.stat().st_mtime for w in wheels) > _newest_source():
        return wheels[-1]
    return None


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (REPO / "pyproject.toml").is_file() or not (REPO / "csrc").is_dir():
        pytest.skip("needs the source tree (pyproject.toml, csrc/) beside the tests")
    found = _fresh_dist_wheel()
    if found is not None:
        return found
    pytest.importorskip("scikit_build_core", reason="building the wheel needs scikit-build-core")
    pytest.importorskip("pybind11", reason="building the wheel needs pybind11")
    out = tmp_path_factory.mktemp("wheel")
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    res = _run([*cmd, "--wheel-dir", str(out), str(REPO)], timeout=900, cwd=REPO)
    assert res.returncode == 0, f"pip wheel failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    (built,) = out.glob("tritondiv-*.whl")
    return built


def _tracked_package_data() -> list[str]:
    """Files git tracks under tritondiv/ that are not Python sources (py.typed, stubs,
    shipped data files)."""
    git = shutil.which("git")
    if git is None:
        return []
    res = _run([git, "ls-files", "tritondiv"], timeout=60, cwd=REPO)
    if res.returncode != 0:
        return []
    return [p for p in res.stdout.split() if not p.endswith(".py")]


def test_wheel_carries_the_compiled_core_and_the_package_data(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    ext = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    assert f"tritondiv/_core{ext}" in names, sorted(n for n in names if "_core" in n)
    assert "tritondiv/_core.pyi" in names
    assert "tritondiv/py.typed" in names
    missing = [p for p in _tracked_package_data() if p not in names]
    assert not missing, f"tracked package files absent from {wheel.name}: {missing}"
    assert not [n for n in names if n.startswith(("csrc/", "python/", "tests/", "bench/"))]


def _tiny_pool(folder: Path) -> tuple[Path, Path, list[dict[str, str]]]:
    """A 40-record jsonl over a 24-word vocabulary and a WordLevel tokenizer for it."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit

    records = []
    for i in range(40):
        instruction = " ".join(WORDS[(i + j) % len(WORDS)] for j in range(3 + i % 5))
        response = " ".join(WORDS[(i * j + 1) % len(WORDS)] for j in range(2 + i % 7))
        records.append({"instruction": instruction, "response": response})
    pool = folder / "tiny.jsonl"
    pool.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    vocab = {"[UNK]": 0, **{w: i + 1 for i, w in enumerate(WORDS)}}
    tok = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = WhitespaceSplit()
    tok_path = folder / "tokenizer.json"
    tok.save(str(tok_path))
    return pool, tok_path, records


def _index_reachable(python: Path, scratch: Path, env: dict[str, str]) -> bool:
    """Whether pip can fetch a small wheel (tqdm, a core dependency) from its index."""
    cmd = [str(python), "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    try:
        res = _run([*cmd, "-d", str(scratch), "tqdm"], timeout=120, env=env)
    except subprocess.TimeoutExpired:
        return False
    return res.returncode == 0


def test_wheel_installs_without_a_compiler_and_runs_stats(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    res = _run([sys.executable, "-m", "venv", str(venv)], timeout=300)
    assert res.returncode == 0, res.stderr
    bindir = venv / "bin"
    python = bindir / "python"
    # Only the new environment's bin/ on PATH: no cmake, no compiler to fall back on.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(PATH=str(bindir), TRITONDIV_CACHE=str(tmp_path / "cache"), HF_HUB_OFFLINE="1")
    for tool in ("cmake", "c++", "g++", "cc", "gcc", "clang", "ninja", "make"):
        assert shutil.which(tool, path=env["PATH"]) is None, tool
    if not _index_reachable(python, tmp_path / "probe", env):
        pytest.skip("pip cannot reach a package index here (the wheel's dependencies come from it)")

    cmd = [str(python), "-m", "pip", "install", "--quiet", "--only-binary=:all:", str(wheel)]
    res = _run(cmd, timeout=600, env=env, cwd=tmp_path)
    assert res.returncode == 0, f"pip install failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    assert "cmake" not in (res.stdout + res.stderr).lower()

    # the package imported is the installed one, with its compiled core; no torch came along
    probe = (
        "import importlib.util, tritondiv, tritondiv._core as c; "
        "print(c.__file__); print(importlib.util.find_spec('torch') is None)"
    )
    res = _run([str(python), "-c", probe], timeout=120, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    core_file, no_torch = res.stdout.split()
    assert Path(core_file).is_relative_to(venv)
    assert no_torch == "True"

    pool, tok_path, records = _tiny_pool(tmp_path)
    out = tmp_path / "stats.json"
    cmd = [str(bindir / "tritondiv"), "stats", str(pool), "--component", "both"]
    cmd += ["--tokenizer", str(tok_path), "--lo", "2", "--hi", "20", "--json", str(out)]
    res = _run([*cmd, "--no-progress"], timeout=300, env=env, cwd=tmp_path)
    assert res.returncode == 0, f"tritondiv stats failed:\n{res.stdout}\n{res.stderr}"
    got = json.loads(out.read_text(encoding="utf-8"))
    for comp in ("instruction", "response"):
        words = [w for r in records for w in r[comp].split()]
        stats = got["components"][comp]
        assert stats["n_samples"] == len(records)
        assert stats["n_tokens"] == len(words)
        assert stats["vocab_used"] == len(set(words))
