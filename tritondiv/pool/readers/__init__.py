"""Readers: one small module per container, each returning :class:`~.base.Block` s.

:func:`expand` turns a source (file, directory, saved dataset) into the files to read;
:func:`read` reads one of them with the reader its suffix (or folder) names.

Directories are walked recursively in sorted name order, hidden entries skipped. Links are
followed, but a folder or file reached a second time (a link loop, or two links to one
target) is read once, under the first path in that order, and a link to a folder that holds
the folder it sits in (a loop up the tree) is not followed. A broken link whose name has a
pool suffix is an error naming the link and its target; other broken links are ignored,
as are other files.
"""

from __future__ import annotations

import os
from pathlib import Path

from tritondiv.pool.model import PoolError, SkippedRecord
from tritondiv.pool.readers.base import Block, split_suffix
from tritondiv.pool.readers.hf import is_saved_dataset, read_saved_dataset
from tritondiv.pool.readers.json import read_json
from tritondiv.pool.readers.jsonl import read_jsonl
from tritondiv.pool.readers.parquet import read_parquet
from tritondiv.pool.readers.table import in_memory_kind, read_in_memory

__all__ = ["Block", "expand", "in_memory_kind", "read", "read_in_memory"]

_TYPES_HINT = (
    "A pool is a .jsonl, .json or .parquet file (optionally .gz), a directory of them, "
    "or a datasets save_to_disk folder"
)


def _broken_link(path: Path) -> PoolError:
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    return PoolError(
        f"is a broken symbolic link (its target {target!r} does not exist or loops)",
        path=path,
        hint="Fix or remove the link",
    )


def expand(source: str | os.PathLike[str]) -> list[tuple[Path, str]]:
    """Files (or saved datasets) of one source, with the name used in fallback ids."""
    path = Path(source)
    if not path.exists():
        if path.is_symlink():
            raise _broken_link(path)
        raise PoolError(
            "does not exist",
            path=path,
            hint="Pass a pool file or directory (or nothing for the default pool)",
        )
    if path.is_file():
        if not split_suffix(path)[0]:
            raise PoolError("has an unsupported file type", path=path, hint=_TYPES_HINT)
        return [(path, path.name)]
    if is_saved_dataset(path):
        return [(path, path.name)]
    found: list[tuple[Path, str]] = []
    seen: set[Path] = {path.resolve()}  # real paths of the folders and files taken

    def walk(folder: Path) -> None:
        here = folder.resolve()
        try:
            entries = sorted(folder.iterdir(), key=lambda p: p.name)
        except OSError as exc:
            raise PoolError(
                f"cannot be listed ({exc.strerror or exc})", path=folder, hint="Check the folder"
            ) from None
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if not entry.exists():  # a broken link (or one that loops on itself)
                if entry.is_symlink() and split_suffix(entry)[0]:
                    raise _broken_link(entry)
                continue
            is_dir = entry.is_dir()
            if not is_dir and not split_suffix(entry)[0]:
                continue
            real = entry.resolve()
            if real in seen or (is_dir and here.is_relative_to(real)):
                continue  # taken already, or a link up into the walk (a loop)
            seen.add(real)
            if is_dir and not is_saved_dataset(entry):
                walk(entry)
            else:
                found.append((entry, entry.relative_to(path).as_posix()))

    walk(path)
    if not found:
        raise PoolError("holds no pool files", path=path, hint=_TYPES_HINT)
    return found


def read(
    path: Path, rel: str, max_records: int | None, mapped: bool = False
) -> tuple[list[Block], list[SkippedRecord]]:
    """The blocks of one file or saved dataset (``rel`` names it in fallback ids), and the
    parts skipped whole (empty splits); ``mapped`` as for :func:`read_jsonl`."""
    try:
        if path.is_dir():
            blocks, empty = read_saved_dataset(path)
            for b in blocks:
                b.rel = f"{rel}/{b.rel}" if b.rel else rel
            return blocks, empty
        suffix, gz = split_suffix(path)
        if path.stat().st_size == 0:
            raise PoolError(
                "is empty (0 bytes)", path=path, hint="Pass a file with at least one record"
            )
        if suffix == ".jsonl":
            block = read_jsonl(path, gz, max_records, mapped)
        elif suffix == ".json":
            block = read_json(path, gz)
        else:
            block = read_parquet(path, gz)
    except OSError as exc:
        raise PoolError(
            f"cannot be read ({exc.strerror or exc})", path=path, hint="Check the file"
        ) from None
    block.rel = rel
    return [block], []
