"""The safe writing of an output folder, for :mod:`tritondiv.dataset` (which owns the
folder's format and re-exports the public names here).

- :func:`check_target` and :func:`check_writable`: the checks of an output path that do
  not depend on what the folder holds (a str or path, not empty, not the root, not the
  current folder or above it, not a file; writable, or its nearest existing parent is);
- :func:`dataset_lock`: the exclusive, re-entrant lock of one output folder;
- :func:`swap_in` and :func:`recover_swapped_out`: the build-aside-and-swap of a finished
  folder, and the putting back of a folder that a killed run left renamed aside (stale
  temporaries are removed by :func:`tritondiv._io.clean_stale_temporaries`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from tritondiv._io import fsync_dir, parse_temporary_name, pid_alive, temporary_name

__all__ = [
    "DatasetBusyError",
    "DatasetError",
    "OutputDirError",
    "check_target",
    "check_writable",
    "dataset_lock",
    "recover_swapped_out",
    "swap_in",
]


class DatasetError(ValueError):
    """A dataset folder that cannot be written, read or trusted (the message names it)."""


class OutputDirError(DatasetError):
    """An output location that cannot receive a dataset (checked before any work)."""


class DatasetBusyError(DatasetError):
    """Another writer holds the output folder's lock (the message names it and its pid)."""


# ----------------------------------------------------------------------------- output checks
def check_target(out: str | os.PathLike[str]) -> Path:
    """``out`` as a normalized Path, after the checks that do not look inside it.

    Raises
    ------
    TypeError
        ``out`` is not a str or path.
    OutputDirError
        ``out`` is empty, the file system root, the current folder (or above it), or a file.
    """
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out must be a str or path, got {type(out).__name__}")
    text = os.fspath(out)
    if not isinstance(text, str) or not text.strip():
        raise OutputDirError(f"output folder {text!r} is empty: pass a folder path")
    path = Path(os.path.normpath(text))
    real = Path(os.path.realpath(path))
    if not real.name:
        raise OutputDirError(f"output folder {path} is the file system root: pass a folder")
    cwd = Path.cwd().resolve()
    if real == cwd or real in cwd.parents:
        raise OutputDirError(
            f"output folder {path} is (or holds) the current folder: pass a folder below it"
        )
    if path.exists() and not path.is_dir():
        raise OutputDirError(f"output folder {path} is a file: pass a folder path")
    return path


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)


def check_writable(path: Path, what: str) -> None:
    """Raise :class:`OutputDirError` unless the folder ``path`` (when it exists) and its
    nearest existing parent are writable folders; ``what`` names it (dataset, ladder)."""
    if path.is_dir() and not _writable(path):
        raise OutputDirError(f"output folder {path} is not writable")
    probe = path.absolute().parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise OutputDirError(f"output folder {path} lies below {probe}, which is a file")
    if not _writable(probe):
        raise OutputDirError(f"cannot create the {what} folder {path}: {probe} is not writable")


# ----------------------------------------------------------------------------- the lock
_LOCAL = threading.local()  # .held: lock file -> depth, for this thread's locks


def _lock_path(out: Path) -> Path:
    real = Path(os.path.realpath(out))  # one lock per folder, whatever the path to it
    return real.parent / f".{real.name}.lock"


def _holder(lock: Path) -> str:
    with contextlib.suppress(OSError, ValueError):
        return f"pid {int(lock.read_text(encoding='ascii').strip())}"
    return "another process"


@contextlib.contextmanager
def dataset_lock(
    out: str | os.PathLike[str], *, timeout: float = 0.0, poll: float = 0.1
) -> Iterator[Path]:
    """Hold the exclusive lock of output folder ``out`` (a dataset or a ladder).

    The lock is ``fcntl.flock`` on ``<parent>/.<name>.lock`` (created with the parent; it
    holds the holder's pid and is left in place), so two processes writing the same folder
    cannot interleave. Re-entrant within a thread (:func:`tritondiv.dataset.write_dataset`
    takes it too, so a command may hold it around selection and writing). Yields the lock
    file's path.

    Parameters
    ----------
    out : path
        The output folder.
    timeout : float
        Seconds to wait for another holder (default 0: fail at once).
    poll : float
        Seconds between two tries while waiting.

    Raises
    ------
    DatasetBusyError
        Another process (or thread) still holds the lock after ``timeout``; the message
        names the folder and the holder's pid.
    """
    if timeout < 0:
        raise ValueError(f"timeout must be >= 0, got {timeout}")
    lock = _lock_path(Path(out))
    key = str(lock)
    held: dict[str, int] = _LOCAL.__dict__.setdefault("held", {})
    if key in held:
        held[key] += 1
        try:
            yield lock
        finally:
            held[key] -= 1
        return
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pass
            if time.monotonic() >= deadline:
                raise DatasetBusyError(
                    f"output folder {out} is being written by {_holder(lock)} (lock file "
                    f"{lock}): wait for it to finish, or pass another folder"
                )
            time.sleep(poll)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        held[key] = 1
        try:
            yield lock
        finally:
            del held[key]
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing the descriptor releases the flock


# ----------------------------------------------------------------------------- the swap
def swap_in(tmp: Path, out: Path) -> None:
    """Put the finished folder ``tmp`` at ``out``: the earlier ``out`` (if any) is renamed
    aside, ``tmp`` renamed in, the earlier one removed. On failure ``out`` is as before."""
    old = None
    if out.exists():
        old = out.parent / temporary_name(out.name, "old")
        os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        if old is not None:
            os.rename(old, out)
        raise
    with contextlib.suppress(OSError):
        fsync_dir(out.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def recover_swapped_out(parent: Path, is_ours: Callable[[Path], bool]) -> list[Path]:
    """Put back the folders that a run killed inside :func:`swap_in` left renamed aside
    (``.<name>.old-<dead pid>-<random>`` with no ``<name>``) and that ``is_ours`` (given the
    folder aside) vouches for; return the recovered ones."""
    recovered = []
    for entry in sorted(os.scandir(parent), key=lambda e: e.name):
        parsed = parse_temporary_name(entry.name)
        if parsed is None or parsed[1] != "old" or pid_alive(parsed[2]):
            continue
        target = parent / parsed[0]
        if target.exists() or not is_ours(Path(entry.path)):
            continue
        os.rename(entry.path, target)
        recovered.append(target)
    return recovered
