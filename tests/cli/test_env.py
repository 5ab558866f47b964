"""``tritondiv env`` and the top-level options and error handling of the CLI."""

from __future__ import annotations

import json

import pytest

import tritondiv
from tritondiv.cli import main


def test_env_json_and_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["env", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["threads"] == tritondiv.num_threads() and "openmp" in info
    assert main(["env"]) == 0
    table = capsys.readouterr().out
    assert "threads" in table and "openmp" in table


def test_threads_option(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = tritondiv.num_threads()
    try:
        assert main(["--threads", "1", "env", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["threads"] == 1
    finally:
        tritondiv.set_num_threads(before)
    assert main(["--threads", "0", "env"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--threads 0" in err

    import tritondiv._runtime as runtime

    def refuse(n: int) -> None:
        raise ValueError(f"{n} threads is more than this machine can run")

    monkeypatch.setattr(runtime, "set_num_threads", refuse)
    assert main(["--threads", "100000", "env"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "tritondiv env: error: --threads 100000: 100000 threads is more than this machine can run\n"
    )


def test_a_bug_shows_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    import tritondiv._runtime as runtime

    def broken() -> dict:
        raise TypeError("a bug")

    monkeypatch.setattr(runtime, "env_info", broken)
    with pytest.raises(TypeError, match="a bug"):
        main(["env"])


def test_user_errors_are_one_line(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import tritondiv._runtime as runtime

    def user_error() -> dict:
        raise FileNotFoundError("pool.jsonl does not exist:\n  pass another path")

    monkeypatch.setattr(runtime, "env_info", user_error)
    assert main(["env"]) == 2
    assert capsys.readouterr().err == (
        "tritondiv env: error: pool.jsonl does not exist: pass another path\n"
    )
