"""tritondiv._extras: optional modules imported with a one-line error naming the extra."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

from tritondiv import _extras
from tritondiv._extras import EXTRAS, MissingExtraError, check_extras, require_extra

ABSENT = "tritondiv_test_no_such_module_3f9c"


def test_require_extra_returns_the_module() -> None:
    assert require_extra("math", "report", "a test") is math
    import os.path

    assert require_extra("os.path", "report", "a test") is os.path


def test_require_extra_missing_module_names_the_extra() -> None:
    with pytest.raises(MissingExtraError) as info:
        require_extra(ABSENT, "report", "the ladder's report")
    err = info.value
    assert isinstance(err, ImportError)
    msg = str(err)
    assert "\n" not in msg
    assert msg.startswith("the ladder's report needs ")
    assert ABSENT in msg
    assert msg.endswith("pip install 'tritondiv[report]'")
    assert err.modules == (ABSENT,) and err.extras == ("report",)
    assert err.name == ABSENT
    assert err.__cause__ is None and err.__suppress_context__


def test_require_extra_missing_parent_package() -> None:
    # "absent.sub": the package above the module is what is missing
    with pytest.raises(MissingExtraError, match=r"tritondiv\[embed\]"):
        require_extra(f"{ABSENT}.sub", "embed", "embeddings")


def test_require_extra_does_not_disguise_a_broken_installed_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An installed module whose own import fails: that error is the one to see.
    name = "tritondiv_test_broken_module_3f9c"
    (tmp_path / f"{name}.py").write_text(f"import {ABSENT}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    with pytest.raises(ModuleNotFoundError) as info:
        require_extra(name, "report", "a test")
    assert not isinstance(info.value, MissingExtraError)
    assert info.value.name == ABSENT


@pytest.mark.parametrize(
    ("args", "exc"),
    [
        ((1, "report", "x"), TypeError),
        (("math", None, "x"), TypeError),
        (("math", "report", b"x"), TypeError),
        (("", "report", "x"), ValueError),
    ],
)
def test_require_extra_bad_arguments(args: tuple, exc: type[Exception]) -> None:
    with pytest.raises(exc):
        require_extra(*args)


def test_check_extras_all_present(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(_extras.EXTRAS, "fake", (("math", "math"), ("json", "json")))
    check_extras("fake", what="a test")  # no error
    check_extras()  # nothing asked, nothing missing


def test_check_extras_lists_every_missing_module_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(_extras.EXTRAS, "fake", (("math", "math"), (ABSENT, "absent")))
    monkeypatch.setitem(_extras.EXTRAS, "fake2", ((ABSENT, "again"), (ABSENT + "_b", "b")))
    imported_before = set(sys.modules)
    with pytest.raises(MissingExtraError) as info:
        check_extras("fake", "fake2", what="tritondiv ladder")
    msg = str(info.value)
    assert "\n" not in msg
    assert msg == (
        f"tritondiv ladder needs {ABSENT} (extra 'fake'), {ABSENT}_b (extra 'fake2'), "
        "not installed: pip install 'tritondiv[fake,fake2]'"
    )
    assert info.value.modules == (ABSENT, ABSENT + "_b")
    assert info.value.extras == ("fake", "fake2")
    assert set(sys.modules) == imported_before  # checked, not imported


def test_check_extras_unknown_extra() -> None:
    with pytest.raises(ValueError, match=r"extra 'nope' does not exist; the extras are demo"):
        check_extras("nope")
    with pytest.raises(TypeError):
        check_extras(3)  # type: ignore[arg-type]


def test_extras_match_pyproject() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    if not pyproject.is_file():
        pytest.skip("pyproject.toml is not beside the tests (installed package only)")
    declared = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    assert set(EXTRAS) <= set(declared)
    # every extra of pyproject.toml that installs modules of its own is known here
    assert set(declared) - set(EXTRAS) <= {"all", "test"}
