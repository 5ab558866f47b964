"""In-memory sources: a ``datasets.Dataset`` or ``DatasetDict`` (one ``split=``), a pandas
or polars ``DataFrame``, a ``pyarrow.Table`` and a list of dicts.

Columnar sources become one pyarrow table (dictionary-encoded columns, e.g. pandas
categories, decoded) and take the pyarrow fast path of :mod:`tritondiv.pool.extract`; a
list of dicts is a list of records, read by the record rule one by one. Each source is one
:class:`~.base.Block` whose fallback ids are ``"<name>:<index>"``, ``<name>`` being
``dataset``, ``dataframe``, ``table``, ``records`` or the split's name.

A ``DatasetDict`` is never merged silently: without ``split=`` it is an error naming its
splits, as is an unknown or empty split.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tritondiv.pool.model import PoolError
from tritondiv.pool.readers.base import Block, decode_dictionaries

__all__ = ["in_memory_kind", "read_in_memory"]


def _module(obj: Any) -> str:
    return type(obj).__module__.split(".")[0]


def in_memory_kind(obj: Any) -> str | None:
    """``"dataset"``, ``"dataset_dict"``, ``"pandas"``, ``"polars"``, ``"arrow"``,
    ``"records"`` for the in-memory sources, else ``None`` (without importing anything)."""
    name, mod = type(obj).__name__, _module(obj)
    if mod == "datasets":
        if name in ("Dataset", "IterableDataset"):
            return "dataset"
        if name in ("DatasetDict", "IterableDatasetDict"):
            return "dataset_dict"
    if mod == "pandas" and name == "DataFrame":
        return "pandas"
    if mod == "polars" and name in ("DataFrame", "LazyFrame"):
        return "polars"
    if mod == "pyarrow" and name in ("Table", "RecordBatch"):
        return "arrow"
    if isinstance(obj, list) and obj and all(isinstance(r, Mapping) for r in obj):
        return "records"
    return None


def _splits_text(splits: Any) -> str:
    return ", ".join(map(repr, sorted(splits))) or "none"


def _dataset_table(ds: Any, shown: str) -> Any:
    if type(ds).__name__ == "IterableDataset":
        raise TypeError(
            f"{shown}: an IterableDataset cannot be read as a pool; "
            "materialize it first (datasets.Dataset.from_generator or .take(n))"
        )
    if len(ds) == 0:
        raise PoolError("holds no rows", path=shown, hint="Pass a dataset with at least one record")
    # with_format("arrow")[:] honours an indices mapping (select, shuffle) without Python
    return ds.with_format("arrow")[:]


def read_in_memory(obj: Any, kind: str, split: str | None) -> Block:
    """The block of one in-memory source (see the module docstring)."""
    import pyarrow as pa

    if kind != "dataset_dict" and split is not None:
        raise ValueError(
            f"split={split!r} applies to a datasets.DatasetDict only, not to {type(obj).__name__}"
        )
    if kind == "records":
        return Block("<records>", "records", records=list(obj))
    if kind == "dataset_dict":
        splits = list(obj.keys())
        if split is None:
            raise PoolError(
                f"is a DatasetDict with the splits {_splits_text(splits)}; splits are never "
                "merged silently",
                path="<DatasetDict>",
                hint="Pass split= (e.g. split='train'), or concatenate the splits yourself",
            )
        if split not in obj:
            raise PoolError(
                f"has no split {split!r} (splits: {_splits_text(splits)})",
                path="<DatasetDict>",
                hint="Pass one of its splits as split=",
            )
        shown = f"<DatasetDict split {split!r}>"
        ds = obj[split]
        if type(ds).__name__ != "IterableDataset" and len(ds) == 0:
            raise PoolError(
                f"the split {split!r} holds no rows",
                path="<DatasetDict>",
                hint="Pass a split with at least one record",
            )
        table, name = _dataset_table(ds, shown), split
    elif kind == "dataset":
        shown, name = "<Dataset>", "dataset"
        table = _dataset_table(obj, shown)
    elif kind == "pandas":
        shown, name = "<pandas.DataFrame>", "dataframe"
        table = pa.Table.from_pandas(obj, preserve_index=False)
    elif kind == "polars":
        shown, name = "<polars.DataFrame>", "dataframe"
        frame = obj.collect() if type(obj).__name__ == "LazyFrame" else obj
        table = frame.to_arrow()
    else:
        shown, name = "<pyarrow.Table>", "table"
        table = obj if isinstance(obj, pa.Table) else pa.Table.from_batches([obj])
    if table.num_rows == 0:
        raise PoolError("holds no rows", path=shown, hint="Pass a table with at least one record")
    if len(set(table.column_names)) != len(table.column_names):
        raise PoolError(
            f"has duplicate column names ({', '.join(map(repr, table.column_names))})",
            path=shown,
            hint="Rename the columns",
        )
    return Block(shown, name, table=decode_dictionaries(table).combine_chunks())
