"""Folders written by ``datasets``' ``save_to_disk``.

A ``Dataset`` folder holds ``dataset_info.json`` and ``state.json``; a ``DatasetDict`` folder
holds ``dataset_dict.json`` and one such folder per split, read in sorted split order. An
empty split (``datasets.load_from_disk`` itself fails on one) is skipped and listed in
:attr:`Pool.skipped` with the position ``"split"``; a folder whose splits are all empty is
an error, as is an empty ``Dataset`` folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tritondiv.pool.model import PoolError, SkippedRecord
from tritondiv.pool.readers.base import Block, decode_dictionaries

__all__ = ["EMPTY_SPLIT", "is_saved_dataset", "read_saved_dataset"]

#: The reason listed in Pool.skipped for an empty split.
EMPTY_SPLIT = "the split holds no rows (skipped)"


def is_saved_dataset(path: Path) -> bool:
    return (path / "dataset_dict.json").is_file() or (
        (path / "dataset_info.json").is_file() and (path / "state.json").is_file()
    )


def _json_file(path: Path, shown: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PoolError(
            f"is not a readable saved dataset ({path.name}: {exc})",
            path=shown,
            hint="Check the folder",
        ) from None


def _has_data(folder: Path) -> bool:
    """Whether a Dataset folder lists data files (an empty one lists none)."""
    state = _json_file(folder / "state.json", folder)
    return not isinstance(state, dict) or bool(state.get("_data_files", True))


def _load(folder: Path) -> Any:
    import datasets

    try:
        return datasets.load_from_disk(str(folder))
    except Exception as exc:  # datasets raises many kinds
        raise PoolError(
            f"is not a readable saved dataset ({type(exc).__name__}: {exc})",
            path=folder,
            hint="Check the folder",
        ) from None


def _table(ds: Any) -> Any:
    return decode_dictionaries(ds.with_format("arrow")[:]).combine_chunks()


def read_saved_dataset(path: Path) -> tuple[list[Block], list[SkippedRecord]]:
    """The blocks of a saved dataset (one per non-empty split) and the empty splits."""
    if not (path / "dataset_dict.json").is_file():
        if not _has_data(path) or len(ds := _load(path)) == 0:
            raise PoolError(
                "holds no rows", path=path, hint="Pass a dataset with at least one record"
            )
        return [Block(str(path), "", table=_table(ds))], []
    listing = _json_file(path / "dataset_dict.json", path)
    splits = listing.get("splits") if isinstance(listing, dict) else None
    if not isinstance(splits, list) or not all(isinstance(s, str) for s in splits):
        raise PoolError(
            "is not a readable saved dataset (dataset_dict.json lists no splits)",
            path=path,
            hint="Check the folder",
        )
    blocks: list[Block] = []
    empty: list[SkippedRecord] = []
    for split in sorted(splits):
        folder = path / split
        if not folder.is_dir():
            raise PoolError(
                f"is not a readable saved dataset (the split {split!r} has no folder)",
                path=path,
                hint="Check the folder",
            )
        ds = _load(folder) if _has_data(folder) else None
        if ds is None or len(ds) == 0:
            empty.append(SkippedRecord(str(folder), "split", EMPTY_SPLIT))
            continue
        blocks.append(Block(str(folder), split, table=_table(ds)))
    if not blocks:
        raise PoolError(
            f"holds no rows: every split is empty ({', '.join(map(repr, sorted(splits)))})",
            path=path,
            hint="Pass a dataset with at least one record",
        )
    return blocks, empty
