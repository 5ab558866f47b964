"""The command line's logging and progress-bar switch.

Library modules log through ``logging.getLogger(__name__)`` (children of the
``tritondiv`` logger, which has a :class:`logging.NullHandler`: a program embedding
tritondiv sees nothing unless it configures logging). The ``tritondiv`` command calls
:func:`setup`: stage messages (INFO) go to stderr as ``tritondiv <command>: <message>``,
``-v`` adds DEBUG (``-vv``: other libraries' DEBUG too), ``-q`` keeps only warnings and
errors and turns every progress bar off through :func:`set_progress_bars`, the one switch
that every bar consults (:func:`progress_enabled`).

A log line written while a bar is drawn goes through ``tqdm.write``, so the bar is redrawn
below it instead of being torn.
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = [
    "LOGGER_NAME",
    "is_quiet",
    "progress_enabled",
    "set_progress_bars",
    "set_quiet",
    "setup",
]

LOGGER_NAME = "tritondiv"

_bars_on = True
_quiet = False
# the Hugging Face libraries' own bars (model loading, downloads) follow the switch too
_HF_BARS = "HF_HUB_DISABLE_PROGRESS_BARS"
_hf_before: list[str | None] = []


def set_progress_bars(enabled: bool) -> None:
    """Allow (``True``, the default) or forbid every progress bar: tritondiv's, and those
    of the Hugging Face libraries (through ``HF_HUB_DISABLE_PROGRESS_BARS``, read when
    they are imported)."""
    global _bars_on
    enabled = bool(enabled)
    if enabled == _bars_on:
        return
    _bars_on = enabled
    if not enabled:
        _hf_before.append(os.environ.get(_HF_BARS))
        os.environ[_HF_BARS] = "1"
    elif _hf_before:
        before = _hf_before.pop()
        if before is None:
            os.environ.pop(_HF_BARS, None)
        else:
            os.environ[_HF_BARS] = before


def is_quiet() -> bool:
    """Whether the CLI runs with ``-q`` (only warnings and errors on stderr)."""
    return _quiet


def set_quiet(quiet: bool) -> None:
    """Set what :func:`is_quiet` says (:func:`setup` does)."""
    global _quiet
    _quiet = bool(quiet)


def progress_enabled(progress: bool | None = None) -> bool:
    """Whether to draw a progress bar: never after ``set_progress_bars(False)`` (``-q``);
    else ``progress``, or (``None``) whether stderr is a terminal."""
    if not _bars_on:
        return False
    if progress is None:
        isatty = getattr(sys.stderr, "isatty", None)
        return bool(isatty and isatty())
    return bool(progress)


class _StderrHandler(logging.Handler):
    """Writes to the current ``sys.stderr`` (looked up per record, so a replaced stderr
    is honoured), through ``tqdm.write`` once tqdm is loaded."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = self.format(record)
            stream = sys.stderr
            tqdm_mod = sys.modules.get("tqdm")
            if tqdm_mod is not None:
                tqdm_mod.tqdm.write(msg, file=stream)
            else:
                stream.write(msg + "\n")
            stream.flush()
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


class _Formatter(logging.Formatter):
    def __init__(self, prefix: str, verbose: bool) -> None:
        super().__init__()
        self.prefix = prefix
        self.verbose = verbose

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        if self.verbose:
            when = self.formatTime(record, "%H:%M:%S")
            return f"{when} {record.levelname.lower():<7} {record.name}: {text}"
        if record.levelno >= logging.WARNING:
            return f"{self.prefix}: {record.levelname.lower()}: {text}"
        return f"{self.prefix}: {text}"


def teardown() -> None:
    """Undo :func:`setup`: the CLI's handler removed, the ``tritondiv`` logger's level and
    propagation back to the library's defaults (a program that called
    :func:`tritondiv.cli.main` logs as before it)."""
    logger = logging.getLogger(LOGGER_NAME)
    root = logging.getLogger()
    for lg in (logger, root):
        for h in list(lg.handlers):
            if isinstance(h, _StderrHandler):
                lg.removeHandler(h)
    logger.setLevel(logging.NOTSET)
    logger.propagate = True
    while _saved_root_level:
        root.setLevel(_saved_root_level.pop())


#: The root logger's level before ``-vv`` raised it (restored by :func:`teardown`).
_saved_root_level: list[int] = []


def setup(verbose: int = 0, quiet: bool = False, *, prefix: str = LOGGER_NAME) -> logging.Logger:
    """Configure the ``tritondiv`` logger for the command line; returns it.

    Parameters
    ----------
    verbose : int
        ``0``: INFO (stage messages); ``1`` (``-v``): DEBUG; ``2`` or more (``-vv``):
        DEBUG of other libraries too.
    quiet : bool
        ``-q``: warnings and errors only, and no progress bars.
    prefix : str
        What every line starts with (``tritondiv ladder``).

    Calling it again replaces the earlier configuration (the CLI may run several times in
    one process, as the tests do).
    """
    if verbose and quiet:
        raise ValueError("-v/--verbose and -q/--quiet exclude each other")
    set_quiet(quiet)
    teardown()
    logger = logging.getLogger(LOGGER_NAME)
    root = logging.getLogger()
    handler = _StderrHandler()
    handler.setFormatter(_Formatter(prefix, verbose > 0))
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    logger.setLevel(level)
    logger.propagate = False  # the CLI owns stderr: no second copy through the root
    logger.addHandler(handler)
    if verbose > 1:
        _saved_root_level.append(root.level)
        root.addHandler(handler)
        root.setLevel(logging.DEBUG)
    set_progress_bars(not quiet)
    return logger
