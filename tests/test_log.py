"""The CLI's logging (``tritondiv._log``): levels, line format, the progress-bar switch."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tritondiv import _log


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    logger = logging.getLogger("tritondiv")
    state = (logger.level, logger.propagate, list(logger.handlers))
    yield
    logger.setLevel(state[0])
    logger.propagate = state[1]
    logger.handlers[:] = state[2]
    _log.set_progress_bars(True)
    _log.set_quiet(False)


def test_the_package_logger_is_silent_unless_configured() -> None:
    import tritondiv  # noqa: F401

    handlers = logging.getLogger("tritondiv").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)


def test_levels_and_line_format(capsys: pytest.CaptureFixture[str]) -> None:
    lib = logging.getLogger("tritondiv.ladder")
    _log.setup(prefix="tritondiv ladder")
    lib.debug("hidden")
    lib.info("embed response (%s samples)", "1,000")
    lib.warning("skipped 2 records")
    assert capsys.readouterr().err == (
        "tritondiv ladder: embed response (1,000 samples)\n"
        "tritondiv ladder: warning: skipped 2 records\n"
    )
    _log.setup(quiet=True, prefix="tritondiv ladder")
    lib.info("hidden")
    lib.error("bad")
    assert capsys.readouterr().err == "tritondiv ladder: error: bad\n"
    _log.setup(verbose=1)
    lib.debug("shown")
    logging.getLogger("other.library").debug("not ours")
    err = capsys.readouterr().err
    assert err.endswith(" debug   tritondiv.ladder: shown\n") and err.count("\n") == 1
    # setup again replaces the handler: one line per record, not two
    _log.setup()
    _log.setup()
    lib.info("once")
    assert capsys.readouterr().err == "tritondiv: once\n"
    with pytest.raises(ValueError, match="exclude each other"):
        _log.setup(verbose=1, quiet=True)


def test_quiet_turns_every_bar_off(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from tritondiv.feature_store import FeatureOptions, Features
    from tritondiv.kernels.cpu import progress_bar
    from tritondiv.tokens import _progress

    class _Tty:
        def isatty(self) -> bool:
            return True

        def write(self, _s: str) -> int:
            return 0

        def flush(self) -> None:
            pass

    monkeypatch.setattr(sys, "stderr", _Tty())
    assert _log.progress_enabled() and _log.progress_enabled(None)
    assert Features([], FeatureOptions()).progress
    assert not progress_bar(10, None, "x").disable
    _log.setup(quiet=True)
    assert not _log.progress_enabled(True) and not _log.progress_enabled(None)
    assert not Features([], FeatureOptions(progress=True)).progress
    assert progress_bar(10, True, "x").disable
    assert _progress(10, "x", True).disable
    _log.set_progress_bars(True)
    _log.set_quiet(False)
    assert not _log.progress_enabled(False)


def test_the_cli_leaves_the_library_logging_as_it_found_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """After ``tritondiv.cli.main`` returns, library log lines reach no stderr handler."""
    from tritondiv.cli import main

    assert main(["env", "--json"]) == 0
    capsys.readouterr()
    lg = logging.getLogger("tritondiv.ladder")
    lg.info("a stage message of a library call")
    assert capsys.readouterr().err == ""
    pkg = logging.getLogger("tritondiv")
    assert pkg.level == logging.NOTSET and pkg.propagate
    assert all(type(h).__name__ != "_StderrHandler" for h in pkg.handlers)
