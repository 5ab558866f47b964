"""Small I/O helpers shared by every stage: atomic writes, the on-disk cache, hashing."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = [
    "atomic_write",
    "cache_dir",
    "file_sha256",
    "load_npz",
    "save_npz_atomic",
    "write_json_atomic",
]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; rename it over ``path`` only on success.

    A failure inside the ``with`` block removes the temporary file and leaves any earlier
    ``path`` untouched, so outputs are never half-written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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


def save_npz_atomic(path: str | os.PathLike[str], **arrays: np.ndarray) -> None:
    """Save arrays into an uncompressed ``.npz`` atomically."""
    with atomic_write(path, "wb") as fh:
        np.savez(fh, **arrays)


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
