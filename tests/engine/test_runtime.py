from __future__ import annotations

import pytest

import tritondiv
from tritondiv import _core


def test_openmp_flag_and_threads_are_reported() -> None:
    assert isinstance(tritondiv.openmp_enabled(), bool)
    n0 = tritondiv.num_threads()
    assert n0 >= 1
    tritondiv.set_num_threads(1)
    try:
        assert tritondiv.num_threads() == 1
    finally:
        tritondiv.set_num_threads(0)
    if tritondiv.openmp_enabled():
        assert tritondiv.num_threads() == n0
    else:
        assert n0 == 1


def test_set_num_threads_rejects_non_int() -> None:
    with pytest.raises(TypeError, match="int"):
        tritondiv.set_num_threads(1.5)  # type: ignore[arg-type]


def test_env_info_keys() -> None:
    info = tritondiv.env_info()
    for key in ("tritondiv", "python", "openmp", "threads", "numpy", "cuda", "triton_usable"):
        assert key in info
    assert info["openmp"] == bool(_core.openmp)


def test_public_api_resolves() -> None:
    missing = []
    for name in tritondiv.__all__:
        try:
            getattr(tritondiv, name)
        except (AttributeError, ImportError) as exc:
            missing.append(f"{name}: {exc}")
    assert not missing, missing


def test_env_command_and_threads_option(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from tritondiv.cli import main

    before = tritondiv.num_threads()
    try:
        assert main(["--threads", "1", "env", "--json"]) == 0
        info = json.loads(capsys.readouterr().out)
        assert info["threads"] == 1 and info["openmp"] == tritondiv.openmp_enabled()
        assert main(["env"]) == 0
        table = capsys.readouterr().out
        assert "openmp" in table and "threads" in table
        assert main(["--threads", "0", "env"]) == 2
        assert "--threads 0" in capsys.readouterr().err
    finally:
        tritondiv.set_num_threads(before)


def test_max_threads_bound_and_message() -> None:
    from tritondiv._runtime import max_threads

    bound = max_threads()
    assert bound == _core.max_threads() >= 256
    with pytest.raises(ValueError, match=rf"exceeds the limit of {bound} \(max\(256, 4 x"):
        tritondiv.set_num_threads(bound + 1)


def test_negative_thread_counts_restore_the_default() -> None:
    before = tritondiv.num_threads()
    try:
        tritondiv.set_num_threads(1)
        tritondiv.set_num_threads(-(10**30))  # any n <= 0, even beyond the C range
        if tritondiv.openmp_enabled():
            assert tritondiv.num_threads() > 0
    finally:
        tritondiv.set_num_threads(before)


def test_a_huge_omp_num_threads_is_lowered_to_the_bound_at_import() -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, OMP_NUM_THREADS="100000")
    root = str(Path(tritondiv.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    code = "import tritondiv._core as c; print(c.num_threads(), c.max_threads(), c.openmp)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, cwd="/"
    )
    assert out.returncode == 0, out.stderr
    threads, bound, openmp = out.stdout.split()
    if openmp == "True":
        assert int(threads) == int(bound)
