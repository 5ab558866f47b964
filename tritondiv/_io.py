"""Small I/O helpers shared by every stage: atomic writes, temporaries beside their
destination (and the clean-up of those of killed runs), safe output paths, the on-disk
cache, hashing.

A temporary is named ``.<name>.tmp-<pid>-<random>`` (``.<name>.old-<pid>-<random>`` for
an output moved aside while its replacement is swapped in), in the destination's folder,
so that a rename puts it in place and :func:`clean_stale_temporaries` can tell a killed
run's leftovers (dead pid) from a running writer's.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = [
    "atomic_write",
    "cache_dir",
    "check_path_component",
    "clean_stale_temporaries",
    "file_sha256",
    "fsync_dir",
    "json_output_stream",
    "load_npz",
    "parse_temporary_name",
    "pid_alive",
    "safe_join",
    "save_npz_atomic",
    "temporary_name",
    "write_json_atomic",
    "write_json_output",
]

_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)-[0-9a-f]+$")
#: Leftovers younger than this are never removed, whatever their pid says (a writer on
#: another host, or in another pid namespace, may share the folder).
STALE_AFTER_S = 60.0


def temporary_name(name: str, kind: str = "tmp") -> str:
    """The name of a temporary (``kind="tmp"``) or moved-aside (``"old"``) copy of ``name``."""
    return f".{name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}"


def parse_temporary_name(name: str) -> tuple[str, str, int] | None:
    """``(name, kind, pid)`` of a :func:`temporary_name`, or ``None`` for any other name."""
    m = _TEMPORARY.match(name)
    return None if m is None else (m["name"], m["kind"], int(m["pid"]))


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (ours always does)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def clean_stale_temporaries(
    folder: str | os.PathLike[str], *, min_age_s: float = STALE_AFTER_S
) -> list[Path]:
    """Remove the temporaries (:func:`temporary_name`) of killed runs from ``folder``.

    A temporary is stale when its writer's pid is not alive and it was last modified more
    than ``min_age_s`` seconds ago. Returns the removed paths.
    """
    root = Path(folder)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(root))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    now = time.time()
    for entry in entries:
        parsed = parse_temporary_name(entry.name)
        if parsed is None or pid_alive(parsed[2]):
            continue
        try:
            if now - entry.stat(follow_symlinks=False).st_mtime < min_age_s:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except FileNotFoundError:  # another writer cleaned it first
            continue
        removed.append(Path(entry.path))
    return removed


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (a rename into it) to disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def safe_join(root: str | os.PathLike[str], *parts: str | os.PathLike[str]) -> Path:
    """``root / parts...``, refusing any result outside ``root``.

    Raises
    ------
    ValueError
        When a part is empty, absolute, or climbs out of ``root`` (``..``, or a symbolic
        link below ``root`` pointing elsewhere); the message names the part.
    """
    base = Path(root).resolve()
    path = base
    for part in parts:
        text = os.fspath(part)
        if not text or "\x00" in text:
            raise ValueError(f"path part {text!r} is empty or holds a NUL byte (below {root})")
        if Path(text).is_absolute():
            raise ValueError(f"path part {text!r} is absolute; it must stay below {root}")
        path = path / text
    resolved = path.resolve()
    if resolved != base and base not in resolved.parents:
        raise ValueError(
            f"path {'/'.join(os.fspath(p) for p in parts)!r} leads outside {root} (to {resolved})"
        )
    return resolved


_SAFE_COMPONENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")


def check_path_component(name: Any, what: str = "name") -> str:
    """Return ``name`` when it is a safe single path component (letters, digits, ``.``,
    ``_``, ``+``, ``-``; starting with a letter or digit; at most 128 characters).

    Raises
    ------
    TypeError
        ``name`` is not a str.
    ValueError
        Anything else (``..``, a ``/``, a hidden name, an empty one); the message names it.
    """
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a str, got {type(name).__name__}")
    if not _SAFE_COMPONENT.match(name):
        raise ValueError(
            f"{what} {name!r} is not a safe file name (letters, digits, '.', '_', '+', '-'; "
            "starting with a letter or digit)"
        )
    return name


def _create_temporary(path: Path) -> tuple[int, Path]:
    """Create (O_EXCL) a temporary beside ``path``; its mode is 0666 less the umask, as
    for any file the process creates (``mkstemp`` would make it 0600)."""
    while True:
        tmp = path.parent / temporary_name(path.name)
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:  # pragma: no cover - 32 random bits collided
            continue


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; rename it over ``path`` only on success.

    A failure inside the ``with`` block removes the temporary file and leaves any earlier
    ``path`` untouched, so outputs are never half-written. The file's mode honours the
    umask.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    with atomic_write(path, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, sort_keys=False, ensure_ascii=False)
        fh.write("\n")


#: ``--json -``: the JSON goes to stdout.
STDOUT = "-"


class _Discard(io.StringIO):
    def write(self, s: str) -> int:
        return len(s)


def json_output_stream(dest: str | os.PathLike[str] | None) -> IO[str]:
    """Where a command prints its human summary: stderr when its JSON goes to stdout
    (``--json -``, so that stdout holds only the JSON; nowhere after ``tritondiv -q``),
    else stdout."""
    import sys

    from tritondiv._log import is_quiet

    if dest is not None and os.fspath(dest) == STDOUT:
        return _Discard() if is_quiet() else sys.stderr
    return sys.stdout


def write_json_output(dest: str | os.PathLike[str], obj: Any) -> str:
    """Write ``obj`` as indented JSON to the file ``dest`` atomically, or to stdout when
    ``dest`` is ``"-"``; returns what was written to (``"stdout"`` or the path), for the
    command's ``wrote ...`` message. Every command's ``--json OUT|-`` goes through here."""
    import sys

    if os.fspath(dest) == STDOUT:
        json.dump(obj, sys.stdout, indent=2, sort_keys=False, ensure_ascii=False)
        sys.stdout.write("\n")
        sys.stdout.flush()
        return "stdout"
    write_json_atomic(dest, obj)
    return os.fspath(dest)


def save_npz_atomic(path: str | os.PathLike[str], **arrays: np.ndarray) -> None:
    """Save arrays into an uncompressed ``.npz`` atomically."""
    savez: Any = np.savez  # numpy's stub types **kwds as its allow_pickle flag
    with atomic_write(path, "wb") as fh:
        savez(fh, **arrays)


def load_npz(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` file into memory."""
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def cache_dir() -> Path:
    """Return the feature cache folder (``$TRITONDIV_CACHE`` or ``~/.cache/tritondiv``)."""
    root = os.environ.get("TRITONDIV_CACHE")
    path = Path(root) if root else Path.home() / ".cache" / "tritondiv"
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Return the hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
