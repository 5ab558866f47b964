"""The readers' shared block type and helpers.

Every reader returns :class:`Block` s: the raw records of one file (or one split of a saved
dataset) as a list of parsed JSON values or a pyarrow table, with what error messages need
(the path shown, the 1-based line numbers of a ``.jsonl``) and what fallback ids need (the
name relative to the directory given).
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tritondiv.pool.formats import json_type
from tritondiv.pool.model import JsonLines, PoolError, position

__all__ = [
    "SUFFIXES",
    "BadJson",
    "Block",
    "decode_dictionaries",
    "decode_text",
    "parse_lines",
    "read_bytes",
    "split_suffix",
]

#: The file types a pool is read from (each optionally ``.gz``).
SUFFIXES = (".jsonl", ".json", ".parquet")


class BadJson:
    """Placeholder for a JSON line that does not parse (reported or skipped later)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


@dataclass
class Block:
    """The raw records of one file: a list of parsed JSON values or a pyarrow table."""

    path: str  # shown in messages and in Pool.source
    rel: str  # used in fallback ids
    records: list[Any] | None = None
    table: Any = None  # pyarrow.Table
    lines: np.ndarray | None = None  # 1-based line number per record (jsonl)
    complete: bool = True  # False when reading stopped early (limit)
    raw_lines: JsonLines | None = None  # jsonl read by pyarrow: its lines, for the records
    first: list[str] | None = None  # fields of the first record, when ``table`` has more
    base: int = 0  # index in its file of the block's first record (a step of a streamed file)

    def to_records(self) -> None:
        """Leave the pyarrow fast path of a jsonl file: parse its lines with ``json``."""
        if self.raw_lines is not None:
            lines = self.raw_lines
            self.records = parse_lines(lines.strings(np.arange(len(lines), dtype=np.int64)))
            self.table = self.raw_lines = None  # ``first`` stays: the file's first record

    def __len__(self) -> int:
        return len(self.records) if self.records is not None else int(self.table.num_rows)

    def where(self, i: int) -> dict[str, Any]:
        """``{"line": ...}`` (jsonl) or ``{"record": i}``: PoolError's position keywords."""
        if self.lines is not None:
            return {"line": int(self.lines[i])}
        return {"record": i}

    def position(self, i: int) -> str:
        return position(**self.where(i)) or ""

    def first_index(self) -> int:
        """Index of the record format detection looks at (the first JSON object)."""
        if self.records is not None:
            for i, r in enumerate(self.records):
                if type(r) is dict:
                    return i
        return 0

    def first_fields(self) -> list[str]:
        """The fields of the first record that is a JSON object (a table's columns)."""
        if self.first is not None:
            return self.first
        if self.records is not None:
            for first in self.records:
                if type(first) is dict:
                    return list(first)
            bad = self.records[0]
            reason = (
                bad.reason
                if isinstance(bad, BadJson)
                else f"is a JSON {json_type(bad)}, expected an object"
            )
            raise PoolError(
                f"{reason}; no record of this file is a JSON object",
                path=self.path,
                **self.where(0),
            )
        return list(self.table.column_names)

    def plain_ids(self, field: str = "id") -> bool:
        """Whether a table's id column (if any) converts to text exactly as ``str()``."""
        import pyarrow as pa

        if self.table is None or field not in self.table.column_names:
            return True
        t = self.table.column(field).type
        return (
            pa.types.is_string(t)
            or pa.types.is_large_string(t)
            or pa.types.is_integer(t)
            or pa.types.is_null(t)
        )

    def ids(self, field: str = "id") -> Any:
        """Every record's id (a list, or a pyarrow string array for tables): its ``field``
        (default ``id``) as ``str`` when present and not null, else ``"<rel>:<index>"``."""
        prefix = self.rel
        if self.records is not None:
            return [
                f"{prefix}:{i}" if v is None else str(v)
                for i, r in enumerate(self.records, self.base)
                for v in (r.get(field) if type(r) is dict else None,)
            ]
        import pyarrow as pa
        import pyarrow.compute as pc

        n = self.table.num_rows
        if field in self.table.column_names:
            col = self.table.column(field)
            if not col.null_count and (
                pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
            ):
                return col  # every record has its id: no fallback needed
        fallback = pc.binary_join_element_wise(
            pa.scalar(prefix),
            pc.cast(pa.array(np.arange(self.base, self.base + n, dtype=np.int64)), pa.string()),
            ":",
        )
        if field not in self.table.column_names:
            return fallback
        col = self.table.column(field).combine_chunks()
        if (
            pa.types.is_string(col.type)
            or pa.types.is_large_string(col.type)
            or pa.types.is_integer(col.type)
        ):
            as_text = pc.cast(col, pa.string())
        else:  # floats, booleans, nested: Python's str(), as for JSON records
            as_text = pa.array(
                [None if v is None else str(v) for v in col.to_pylist()], pa.string()
            )
        return pc.if_else(pc.is_null(as_text), fallback, as_text)

    def segment(self) -> Any:
        """The records as a :class:`~tritondiv.pool.model.RecordStore` segment."""
        if self.raw_lines is not None:
            return self.raw_lines
        return self.records if self.records is not None else self.table


def split_suffix(path: Path) -> tuple[str, bool]:
    """Return (``.jsonl``|``.json``|``.parquet``|'', gzipped)."""
    name = path.name.lower()
    gz = name.endswith(".gz")
    if gz:
        name = name[:-3]
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return suffix, gz
    return "", gz


def read_bytes(path: Path, gz: bool) -> bytes:
    data = path.read_bytes()
    if gz:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise PoolError(
                f"is not a valid gzip file ({exc})",
                path=path,
                hint="Check the file or drop the .gz suffix",
            ) from None
    return data


def decode_text(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise PoolError(
            f"is not valid UTF-8 (byte {exc.start})",
            path=path,
            line=line,
            hint="Re-encode the file as UTF-8",
        ) from None


def parse_lines(chosen: list[str]) -> list[Any]:
    """Parse one JSON value per line; a line that fails becomes a :class:`BadJson`.

    (Measured: calling the C scanner directly instead of ``json.loads`` is not faster.)
    """
    loads = json.loads
    try:
        return [loads(s) for s in chosen]
    except (json.JSONDecodeError, RecursionError):
        pass
    records: list[Any] = []
    for s in chosen:
        try:
            records.append(loads(s))
        except json.JSONDecodeError as exc:
            records.append(BadJson(f"is not valid JSON ({exc.msg} at column {exc.colno})"))
        except RecursionError:
            records.append(BadJson("is not valid JSON (nested too deeply)"))
    return records


def _is_view(t: Any) -> bool:
    import pyarrow as pa

    is_view = getattr(pa.types, "is_string_view", None)
    return bool(is_view is not None and is_view(t))


def decode_dictionaries(table: Any) -> Any:
    """Cast dictionary-encoded columns (pandas categories) to their value type, so that a
    ``dictionary<string>`` column is checked and read as the strings it holds (and
    ``string_view`` columns, as polars writes them, to ``large_string``)."""
    import pyarrow as pa

    def plain(t: Any) -> bool:
        return not pa.types.is_dictionary(t) and not _is_view(t)

    if all(plain(f.type) for f in table.schema):
        return table
    columns = [
        col.cast(col.type.value_type)
        if pa.types.is_dictionary(col.type)
        else col.cast(pa.large_string())
        if _is_view(col.type)
        else col
        for col in table.columns
    ]
    return pa.Table.from_arrays(columns, names=table.column_names)
