"""Pool I/O: read instruction/response pools from files into columns.

A *pool* is the set of samples datasets are selected from. :func:`load_pool` reads one from

* a file: ``.jsonl`` (one JSON object per line), ``.json`` (a JSON list of objects) or
  ``.parquet``, each optionally gzip-compressed (``.jsonl.gz``, ``.json.gz``, ``.parquet.gz``);
* a directory: every such file below it (recursively, hidden entries skipped), in sorted
  path order, plus any dataset saved with ``datasets``' ``save_to_disk`` found there;
* a dataset saved with ``datasets.Dataset.save_to_disk`` (a folder holding
  ``dataset_info.json`` and ``state.json``) or ``DatasetDict.save_to_disk`` (a folder holding
  ``dataset_dict.json``; splits are read in sorted name order);
* a list of any of those, in the order given;
* nothing (``None``): the embedded default pool (:func:`tritondiv.default_pool`).

Record formats are detected per file from the fields of the file's first record (or forced
with ``format=``):

``alpaca``
    ``instruction``, optional ``input``, and ``output`` (or ``response`` when the first
    record has no ``output``). instruction = ``instruction + "\\n" + input`` when ``input`` is
    a non-empty string, else ``instruction``; ``input`` may be absent or null.
``prompt_completion``
    ``prompt`` -> instruction, ``completion`` -> response.
``question_answer``
    ``question`` -> instruction, ``answer`` -> response.
``sharegpt``
    ``conversations: [{"from": ..., "value": ...}, ...]``.
``messages``
    OpenAI chat format ``messages: [{"role": ..., "content": ...}, ...]``; ``content`` may
    also be a list of parts, whose ``{"type": "text", "text": ...}`` parts are concatenated.

Conversations (``sharegpt`` and ``messages``):

* user roles are ``human`` and ``user``; assistant roles are ``gpt``, ``assistant``,
  ``chatgpt``, ``bing``, ``bard``, ``model`` and ``bot``;
* ``system``, ``developer``, ``tool``, ``function``, ``ipython`` and ``observation`` turns
  are not part of either text (the instruction is what the user wrote, the response what
  the assistant wrote); any other role is an error;
* the conversation starts at its first user turn: assistant turns before it (e.g. the tail
  of an answer whose question sits in a previous chunk, frequent in ShareGPT splits) are
  not part of the response;
* turns whose text is empty or whitespace only are left out;
* instruction = the user turns joined with a blank line (``"\\n\\n"``), response = the
  assistant turns after the first user turn, joined likewise;
* with ``first_turn_only=True``: instruction = the first user turn, response = the first
  assistant turn after it;
* a conversation needs a non-empty user turn and a non-empty assistant turn after it,
  otherwise it is a bad record.

Text fields are kept exactly as read (not stripped). Bad records — an invalid JSON line, a
record that is not an object, a missing, null, non-string or (after stripping whitespace)
empty instruction or response, a conversation without an assistant reply, an unknown role —
raise :class:`PoolError` naming the file, the line (``.jsonl``) or record index (0-based, for
``.json``, parquet and ``save_to_disk`` datasets) and the field. With ``skip_bad=True`` they
are skipped instead, and every skipped record is listed in :attr:`Pool.skipped` with its
reason: nothing is ever dropped silently.

Sample ids: the record's ``id`` field (as ``str``) when present and not null, else
``"<file>:<index>"`` where ``<file>`` is the path relative to the directory given (the file
name for a single file) and ``<index>`` the 0-based record index in that file. An id seen
before in the pool gets the suffix ``#2``, ``#3``, ... so that ids are unique (the record
itself keeps its original ``id``).

Speed: parquet and ``save_to_disk`` tables are checked and joined with pyarrow compute (no
per-record Python; records become dicts only when :attr:`Pool.records` is read). Big
``.jsonl`` files of the single-turn formats are parsed by pyarrow's multi-threaded JSON
reader, and their records are parsed from the kept lines only on demand; a file pyarrow
cannot read exactly as ``json`` would (mixed types, ids that print differently, bad
records) takes the plain ``json`` path, so results never depend on the path taken.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FORMATS",
    "Pool",
    "PoolError",
    "SkippedRecord",
    "add_pool_arguments",
    "detect_format",
    "load_pool",
    "pool_from_args",
]

#: Accepted values of ``format=`` (``auto`` detects per file).
FORMATS: tuple[str, ...] = (
    "auto",
    "alpaca",
    "prompt_completion",
    "question_answer",
    "sharegpt",
    "messages",
)

_USER_ROLES = frozenset({"human", "user"})
_ASSISTANT_ROLES = frozenset({"gpt", "assistant", "chatgpt", "bing", "bard", "model", "bot"})
_IGNORED_ROLES = frozenset({"system", "developer", "tool", "function", "ipython", "observation"})
_SUFFIXES = (".jsonl", ".json", ".parquet")
_MISSING: Any = object()  # a field absent from a record


# --------------------------------------------------------------------------------------
# errors and skipped records
# --------------------------------------------------------------------------------------


class PoolError(ValueError):
    """A pool that cannot be read, or a bad record in it.

    The message names the file, the line (``.jsonl``) or 0-based record index (``.json``,
    parquet, ``save_to_disk``), the field, and what to do about it. The same facts are in
    the attributes ``path``, ``line``, ``record`` and ``field`` (``None`` when not
    applicable).
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike[str] | None = None,
        line: int | None = None,
        record: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.line = line
        self.record = record
        self.field = field
        self.reason = message
        where = [p for p in (self.path, _position(line, record)) if p]
        if field is not None:
            where.append(f"field {field!r}")
        text = f"{', '.join(where)}: {message}" if where else message
        if hint:
            text = f"{text}. {hint}"
        super().__init__(text)


def _position(line: int | None = None, record: int | None = None) -> str | None:
    if line is not None:
        return f"line {line}"
    if record is not None:
        return f"record {record}"
    return None


_BAD_RECORD_HINT = "Fix the record, or pass skip_bad=True (--skip-bad) to skip bad records"


@dataclass(frozen=True)
class SkippedRecord:
    """A record left out of a pool loaded with ``skip_bad=True``.

    Attributes
    ----------
    path : str
        The file the record is in.
    position : str
        ``"line 12"`` (``.jsonl``, 1-based) or ``"record 3"`` (0-based index).
    reason : str
        Why it was skipped, naming the field (e.g. ``"field 'output': is empty"``).
    """

    path: str
    position: str
    reason: str


# --------------------------------------------------------------------------------------
# records storage (lazy for columnar sources)
# --------------------------------------------------------------------------------------


class _JsonColumn:
    """Records stored as one JSON text per record (the default pool's cache).

    ``texts`` is a pyarrow string array, or a callable returning one (read on first use).
    """

    def __init__(self, texts: Any, length: int | None = None) -> None:
        self._texts = texts
        self._length = length

    @property
    def texts(self) -> Any:
        if callable(self._texts):
            self._texts = self._texts()
        return self._texts

    def __len__(self) -> int:
        return self._length if self._length is not None else len(self.texts)

    def take(self, local: np.ndarray) -> list[dict[str, Any]]:
        loads = json.loads
        texts = self.texts
        if isinstance(texts, list):
            return [loads(texts[i]) for i in local.tolist()]
        return [loads(t) for t in texts.take(local).to_pylist()]


class _RecordStore:
    """The pool's original records: python lists, pyarrow tables or JSON texts, gathered
    lazily through a global index (so a parquet pool never builds dicts it does not need)."""

    def __init__(self, segments: list[Any], index: np.ndarray | None = None) -> None:
        self.segments = segments
        sizes = np.array([len(s) for s in segments], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        total = int(self.starts[-1])
        self.index = np.arange(total, dtype=np.int64) if index is None else index
        self._cache: list[dict[str, Any]] | None = None

    def __len__(self) -> int:
        return len(self.index)

    def take(self, idx: np.ndarray) -> _RecordStore:
        return _RecordStore(self.segments, self.index[idx])

    def _gather(self, fetch: Any) -> list[Any]:
        out: list[Any] = [None] * len(self.index)
        if not len(self.index):
            return out
        seg = np.searchsorted(self.starts, self.index, side="right") - 1
        for s in np.unique(seg):
            where = np.flatnonzero(seg == s)
            local = self.index[where] - self.starts[s]
            values = fetch(self.segments[int(s)], local)
            for w, v in zip(where.tolist(), values, strict=True):
                out[w] = v
        return out

    def records(self) -> list[dict[str, Any]]:
        if self._cache is None:
            self._cache = self._gather(_take_records)
        return self._cache

    def column(self, name: str) -> list[Any]:
        if self._cache is not None:
            return [r.get(name, _MISSING) if isinstance(r, dict) else _MISSING for r in self._cache]
        return self._gather(lambda seg, local: _take_column(seg, local, name))


def _take_records(seg: Any, local: np.ndarray) -> list[Any]:
    if isinstance(seg, list):
        return [seg[i] for i in local.tolist()]
    if isinstance(seg, _JsonColumn):
        return seg.take(local)
    return seg.take(local).to_pylist()


def _take_column(seg: Any, local: np.ndarray, name: str) -> list[Any]:
    if isinstance(seg, list):
        return [
            seg[i].get(name, _MISSING) if isinstance(seg[i], dict) else _MISSING
            for i in local.tolist()
        ]
    if isinstance(seg, _JsonColumn):
        return [r.get(name, _MISSING) for r in seg.take(local)]
    if name not in seg.column_names:
        return [_MISSING] * len(local)
    return seg.column(name).take(local).to_pylist()


# --------------------------------------------------------------------------------------
# the pool
# --------------------------------------------------------------------------------------


class Pool:
    """Samples as columns: ``ids``, ``instruction``, ``response``, ``source``.

    Parameters
    ----------
    ids, instruction, response, source : list of str
        One entry per sample. ``source`` is the file each sample came from.
    records : list of dict
        The original record of each sample, fields as read (written back verbatim by
        ``tritondiv select``). Columnar sources materialize it lazily on first access.
    skipped : list of SkippedRecord, optional
        Records left out while loading (``skip_bad=True``), with their reasons.
    """

    def __init__(
        self,
        ids: list[str],
        instruction: list[str],
        response: list[str],
        source: list[str],
        records: list[dict[str, Any]] | _RecordStore,
        skipped: Iterable[SkippedRecord] = (),
    ) -> None:
        n = len(ids)
        for name, col in (
            ("instruction", instruction),
            ("response", response),
            ("source", source),
            ("records", records),
        ):
            if len(col) != n:
                raise ValueError(f"Pool column {name!r} has {len(col)} entries for {n} ids")
        self.ids = list(ids)
        self.instruction = list(instruction)
        self.response = list(response)
        self.source = list(source)
        self._records = (
            records if isinstance(records, _RecordStore) else _RecordStore([list(records)])
        )
        self.skipped: list[SkippedRecord] = list(skipped)
        self._fingerprint: str | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        files = len(set(self.source))
        return f"Pool({len(self)} samples from {files} file(s), {len(self.skipped)} skipped)"

    @property
    def records(self) -> list[dict[str, Any]]:
        """The original records, one per sample, fields as read."""
        return self._records.records()

    def component(self, name: str) -> list[str]:
        """Return the texts of one component, ``"instruction"`` or ``"response"``."""
        if name == "instruction":
            return self.instruction
        if name == "response":
            return self.response
        raise ValueError(f"component must be 'instruction' or 'response', got {name!r}")

    def subset(self, indices: Sequence[int] | np.ndarray) -> Pool:
        """Return a new pool of the samples at ``indices``, in that order.

        ``skipped`` is carried over unchanged (it describes how the pool was loaded).
        """
        idx = np.asarray(indices)
        if idx.size == 0:
            idx = idx.astype(np.int64)
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise TypeError(
                f"subset indices must be a 1-D sequence of integers, got {idx.dtype} with shape {idx.shape}"
            )
        n = len(self)
        if idx.size and (int(idx.min()) < -n or int(idx.max()) >= n):
            raise IndexError(
                f"subset indices must lie in [0, {n}), got range [{int(idx.min())}, {int(idx.max())}]"
            )
        idx = np.where(idx < 0, idx + n, idx).astype(np.int64)
        pick = idx.tolist()
        ids, ins, res, src = self.ids, self.instruction, self.response, self.source
        return Pool(
            [ids[i] for i in pick],
            [ins[i] for i in pick],
            [res[i] for i in pick],
            [src[i] for i in pick],
            self._records.take(idx),
            self.skipped,
        )

    def column(self, name: str) -> list[Any]:
        """Return an extra raw field of every record (e.g. ``'template'``, ``'tags'``).

        Raises
        ------
        PoolError
            When some records lack the field; the message says how many and where the
            first one is.
        """
        values = self._records.column(name)
        missing = [i for i, v in enumerate(values) if v is _MISSING]
        if missing:
            first = missing[0]
            raise PoolError(
                f"is missing in {len(missing)} of {len(values)} records "
                f"(first: sample {first}, id {self.ids[first]!r} from {self.source[first]})",
                field=name,
                hint="Pass a pool whose records all carry this field",
            )
        return values

    @property
    def fingerprint(self) -> str:
        """sha256 (hex) over ids, instructions and responses; stable across runs, cached."""
        if self._fingerprint is None:
            # Per column: the lengths (code points, int64 little-endian) then the UTF-8 of
            # the concatenated texts; lengths make the concatenation unambiguous.
            h = hashlib.sha256(b"tritondiv.pool.v1\0")
            h.update(len(self).to_bytes(8, "little"))
            for col in (self.ids, self.instruction, self.response):
                lengths = np.fromiter(map(len, col), dtype="<i8", count=len(col))
                h.update(lengths.tobytes())
                h.update("".join(col).encode("utf-8", "surrogatepass"))
            self._fingerprint = h.hexdigest()
        return self._fingerprint


# --------------------------------------------------------------------------------------
# reading files into blocks of records
# --------------------------------------------------------------------------------------


@dataclass
class _Block:
    """The raw records of one file: a list of parsed JSON values or a pyarrow table."""

    path: str  # shown in messages and in Pool.source
    rel: str  # used in fallback ids
    records: list[Any] | None = None
    table: Any = None  # pyarrow.Table
    lines: np.ndarray | None = None  # 1-based line number per record (jsonl)
    complete: bool = True  # False when reading stopped early (limit)
    raw_lines: list[str] | None = None  # jsonl read by pyarrow: the lines, for the records
    first: list[str] | None = None  # fields of the first record, when ``table`` has more

    def to_records(self) -> None:
        """Leave the pyarrow fast path of a jsonl file: parse its lines with ``json``."""
        if self.raw_lines is not None:
            self.records = _parse_lines(self.raw_lines)
            self.table = self.raw_lines = self.first = None

    def __len__(self) -> int:
        return len(self.records) if self.records is not None else self.table.num_rows

    def where(self, i: int) -> dict[str, int]:
        if self.lines is not None:
            return {"line": int(self.lines[i])}
        return {"record": i}

    def position(self, i: int) -> str:
        return _position(**self.where(i)) or ""

    def first_index(self) -> int:
        """Index of the record format detection looks at (the first JSON object)."""
        if self.records is not None:
            for i, r in enumerate(self.records):
                if type(r) is dict:
                    return i
        return 0

    def first_fields(self) -> list[str]:
        if self.first is not None:
            return self.first
        if self.records is not None:
            for first in self.records:
                if type(first) is dict:
                    return list(first)
            bad = self.records[0]
            reason = (
                bad.reason
                if isinstance(bad, _BadJson)
                else f"is a JSON {_json_type(bad)}, expected an object"
            )
            raise PoolError(
                f"{reason}; no record of this file is a JSON object",
                path=self.path,
                **self.where(0),
            )
        return list(self.table.column_names)  # a table's fields are its columns

    def column(self, name: str) -> list[Any]:
        if self.records is not None:
            return [r.get(name, _MISSING) for r in self.records]
        if name not in self.table.column_names:
            return [_MISSING] * self.table.num_rows
        return self.table.column(name).to_pylist()

    def ids(self) -> Any:
        """Every record's id (a list, or a pyarrow string array for tables): its ``id``
        field as ``str`` when present and not null, else ``"<rel>:<index>"``."""
        prefix = self.rel
        if self.records is not None:
            return [
                f"{prefix}:{i}" if v is None else str(v)
                for i, r in enumerate(self.records)
                for v in (r.get("id") if type(r) is dict else None,)
            ]
        import pyarrow as pa
        import pyarrow.compute as pc

        n = self.table.num_rows
        fallback = pc.binary_join_element_wise(
            pa.scalar(prefix), pc.cast(pa.array(np.arange(n, dtype=np.int64)), pa.string()), ":"
        )
        if "id" not in self.table.column_names:
            return fallback
        col = self.table.column("id").combine_chunks()
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
        if self.raw_lines is not None:
            return _JsonColumn(self.raw_lines)
        return self.records if self.records is not None else self.table


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {
        dict: "object",
        list: "list",
        str: "string",
        bool: "boolean",
        int: "number",
        float: "number",
    }.get(type(value), type(value).__name__)


def _split_suffix(path: Path) -> tuple[str, bool]:
    """Return (``.jsonl``|``.json``|``.parquet``|'', gzipped)."""
    name = path.name.lower()
    gz = name.endswith(".gz")
    if gz:
        name = name[:-3]
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return suffix, gz
    return "", gz


def _read_bytes(path: Path, gz: bool) -> bytes:
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


def _decode_text(path: Path, data: bytes) -> str:
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


def _read_jsonl(path: Path, gz: bool, max_records: int | None) -> _Block:
    data = _read_bytes(path, gz)
    text = _decode_text(path, data)
    lines = text.split("\n")  # only "\n": JSON strings may hold raw U+2028 and friends
    keep = [i for i, s in enumerate(lines) if s and not s.isspace()]
    if not keep:
        raise PoolError(
            "is empty (no JSON lines)", path=path, hint="Pass a file with one JSON object per line"
        )
    complete = True
    if max_records is not None and len(keep) > max_records:
        keep = keep[:max_records]
        complete = False
    chosen = [lines[i] for i in keep]
    line_numbers = np.asarray(keep, dtype=np.int64) + 1
    if complete and len(chosen) >= _ARROW_MIN_LINES:
        fast = _arrow_jsonl(data[3:] if data.startswith(b"\xef\xbb\xbf") else data, chosen)
        if fast is not None:
            table, first = fast
            return _Block(
                str(path), "", table=table, lines=line_numbers, raw_lines=chosen, first=first
            )
    return _Block(
        str(path), "", records=_parse_lines(chosen), lines=line_numbers, complete=complete
    )


_ARROW_MIN_LINES = 1000  # below this, json is as fast and simpler


def _arrow_jsonl(data: bytes, chosen: list[str]) -> tuple[Any, list[str]] | None:
    """Read a jsonl text of single-turn records with pyarrow (multi-threaded C++).

    Returns (table, fields of the first record), or None when the file is not one pyarrow
    reads exactly as ``json`` would (nested formats, mixed types, lone surrogates — which
    pyarrow rejects —, a row count that differs from the line count, ...).
    """
    import pyarrow as pa
    import pyarrow.json as pj

    try:
        first = json.loads(chosen[0])
    except (json.JSONDecodeError, RecursionError):
        return None
    if type(first) is not dict or detect_format(first) not in (
        "alpaca",
        "prompt_completion",
        "question_answer",
    ):
        return None
    try:
        table = pj.read_json(pa.BufferReader(data))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.num_rows != len(chosen):
        return None
    return table.combine_chunks(), list(first)


def _plain_ids(table: Any) -> bool:
    """Whether a table's ``id`` column (if any) converts to text exactly as ``str()`` does."""
    import pyarrow as pa

    if "id" not in table.column_names:
        return True
    t = table.column("id").type
    return (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_integer(t)
        or pa.types.is_null(t)
    )


def _parse_lines(chosen: list[str]) -> list[Any]:
    """Parse one JSON value per line; a line that fails becomes a :class:`_BadJson`.

    (Measured: calling the C scanner directly instead of ``json.loads`` is not faster.)
    """
    loads = json.loads
    try:
        return [loads(s) for s in chosen]
    except (json.JSONDecodeError, RecursionError):
        pass
    loads = json.loads
    records: list[Any] = []
    for s in chosen:
        try:
            records.append(loads(s))
        except json.JSONDecodeError as exc:
            records.append(_BadJson(f"is not valid JSON ({exc.msg} at column {exc.colno})"))
        except RecursionError:
            records.append(_BadJson("is not valid JSON (nested too deeply)"))
    return records


class _BadJson:
    """Placeholder for a JSON line that does not parse (reported or skipped later)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _read_json(path: Path, gz: bool) -> _Block:
    text = _decode_text(path, _read_bytes(path, gz))
    if not text.strip():
        raise PoolError("is empty", path=path, hint="Pass a JSON list of records")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PoolError(
            f"is not valid JSON ({exc.msg} at column {exc.colno})",
            path=path,
            line=exc.lineno,
            hint="Fix the file (a .json pool is one JSON list of records; use .jsonl for one record per line)",
        ) from None
    if not isinstance(value, list):
        raise PoolError(
            f"holds a JSON {_json_type(value)}, expected a list of records",
            path=path,
            hint="A .json pool is one JSON list of objects; for one object per line name the file .jsonl",
        )
    if not value:
        raise PoolError(
            "holds an empty list (no records)",
            path=path,
            hint="Pass a file with at least one record",
        )
    return _Block(str(path), "", records=value)


def _read_parquet(path: Path, gz: bool) -> _Block:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if gz:
            table = pq.read_table(pa.BufferReader(_read_bytes(path, gz)))
        else:
            table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise PoolError(
            f"is not a readable parquet file ({exc})", path=path, hint="Check the file"
        ) from None
    if table.num_rows == 0:
        raise PoolError("holds no rows", path=path, hint="Pass a file with at least one record")
    return _Block(str(path), "", table=table.combine_chunks())


def _is_saved_dataset(path: Path) -> bool:
    return (path / "dataset_dict.json").is_file() or (
        (path / "dataset_info.json").is_file() and (path / "state.json").is_file()
    )


def _read_saved_dataset(path: Path) -> list[_Block]:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:  # datasets raises many kinds
        raise PoolError(
            f"is not a readable saved dataset ({exc})", path=path, hint="Check the folder"
        ) from None
    if isinstance(loaded, datasets.DatasetDict):
        parts = [(str(path / split), split, loaded[split]) for split in sorted(loaded)]
    else:
        parts = [(str(path), "", loaded)]
    blocks = []
    for shown, rel, ds in parts:
        table = ds.with_format("arrow")[:] if len(ds) else None
        if table is None or table.num_rows == 0:
            raise PoolError(
                "holds no rows", path=shown, hint="Pass a dataset with at least one record"
            )
        blocks.append(_Block(shown, rel, table=table.combine_chunks()))
    return blocks


def _expand(source: str | os.PathLike[str]) -> list[tuple[Path, str]]:
    """Files (or saved datasets) of one source, with the name used in fallback ids."""
    path = Path(source)
    if not path.exists():
        raise PoolError(
            "does not exist",
            path=path,
            hint="Pass a pool file or directory (or nothing for the default pool)",
        )
    if path.is_file():
        suffix, _ = _split_suffix(path)
        if not suffix:
            raise PoolError(
                "has an unsupported file type",
                path=path,
                hint="Pass a .jsonl, .json or .parquet file (optionally .gz), a directory of them, "
                "or a datasets save_to_disk folder",
            )
        return [(path, path.name)]
    if _is_saved_dataset(path):
        return [(path, path.name)]
    found: list[tuple[Path, str]] = []

    def walk(folder: Path) -> None:
        for entry in sorted(folder.iterdir(), key=lambda p: p.name):
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                if _is_saved_dataset(entry):
                    found.append((entry, entry.relative_to(path).as_posix()))
                else:
                    walk(entry)
            elif _split_suffix(entry)[0]:
                found.append((entry, entry.relative_to(path).as_posix()))

    walk(path)
    if not found:
        raise PoolError(
            "holds no pool files",
            path=path,
            hint="A pool directory holds .jsonl, .json or .parquet files (optionally .gz) or save_to_disk datasets",
        )
    return found


def _read(path: Path, rel: str, max_records: int | None) -> list[_Block]:
    if path.is_dir():
        blocks = _read_saved_dataset(path)
        for b in blocks:
            b.rel = f"{rel}/{b.rel}" if b.rel else rel
        return blocks
    suffix, gz = _split_suffix(path)
    if path.stat().st_size == 0:
        raise PoolError(
            "is empty (0 bytes)", path=path, hint="Pass a file with at least one record"
        )
    if suffix == ".jsonl":
        block = _read_jsonl(path, gz, max_records)
    elif suffix == ".json":
        block = _read_json(path, gz)
    else:
        block = _read_parquet(path, gz)
    block.rel = rel
    return [block]


# --------------------------------------------------------------------------------------
# records -> texts
# --------------------------------------------------------------------------------------


def detect_format(fields: Iterable[str]) -> str | None:
    """Return the record format a record with these fields has, or ``None``."""
    f = set(fields)
    if "conversations" in f:
        return "sharegpt"
    if "messages" in f:
        return "messages"
    if "instruction" in f and ("output" in f or "response" in f):
        return "alpaca"
    if "prompt" in f and "completion" in f:
        return "prompt_completion"
    if "question" in f and "answer" in f:
        return "question_answer"
    return None


class _Texts:
    """instruction/response of one block plus per-record problems (index -> (field, reason))."""

    def __init__(self, n: int) -> None:
        self.instruction: list[Any] = [None] * n
        self.response: list[Any] = [None] * n
        self.problems: dict[int, tuple[str | None, str]] = {}

    def flag(self, i: int, field: str | None, reason: str) -> None:
        self.problems.setdefault(i, (field, reason))


def _value_problem(v: Any) -> str | None:
    if v is _MISSING:
        return "is missing"
    if type(v) is not str:
        return f"is a JSON {_json_type(v)}, expected a string"
    if not v or v.isspace():
        return "is empty"
    return None


def _check_text(texts: _Texts, col: list[Any], field: str, allow_empty: bool = False) -> None:
    if allow_empty:
        bad = [i for i, v in enumerate(col) if type(v) is not str]
    else:
        bad = [i for i, v in enumerate(col) if type(v) is not str or not v or v.isspace()]
    for i in bad:
        texts.flag(i, field, _value_problem(col[i]) or "is empty")


def _records_problems(block: _Block, texts: _Texts) -> None:
    if block.records is None:
        return
    for i, r in enumerate(block.records):
        if type(r) is not dict:
            if isinstance(r, _BadJson):
                texts.flag(i, None, r.reason)
            else:
                texts.flag(i, None, f"is a JSON {_json_type(r)}, expected an object")
    if texts.problems:  # give Block.column something with .get
        for i in texts.problems:
            block.records[i] = {}


def _arrow_check_text(
    texts: _Texts, table: Any, field: str, allow_empty: bool, nullable: bool = False
) -> Any:
    """Vectorized checks of one text column of a table; returns it (a pyarrow array) or None
    when it is absent. Flags nulls, non-string types and (unless ``allow_empty``) empty or
    whitespace-only texts, with the same reasons as the record path."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = table.num_rows
    if field not in table.column_names:
        if not nullable:
            for i in range(n):
                texts.flag(i, field, "is missing")
        return None
    col = table.column(field).combine_chunks()
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        valid = np.flatnonzero(col.is_valid().to_numpy(zero_copy_only=False))
        for i in valid.tolist():
            v = col[i].as_py()
            want = "a string or null" if nullable else "a string"
            texts.flag(i, field, f"is a JSON {_json_type(v)}, expected {want}")
        if not nullable:
            for i in np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False)).tolist():
                texts.flag(i, field, "is a JSON null, expected a string")
        return None
    if not nullable and col.null_count:
        for i in np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False)).tolist():
            texts.flag(i, field, "is a JSON null, expected a string")
    if not allow_empty and not nullable:
        # A text holding a printable ASCII character is not empty; the others (empty,
        # whitespace, or no ASCII at all) are checked with Python's own str.isspace.
        has_ascii = pc.match_substring_regex(col, "[!-~]").to_numpy(zero_copy_only=False)
        maybe = np.flatnonzero(
            ~has_ascii.astype(bool) & col.is_valid().to_numpy(zero_copy_only=False)
        )
        if maybe.size:
            values = col.take(pa.array(maybe)).to_pylist()
            for i, v in zip(maybe.tolist(), values, strict=True):
                if not v or v.isspace():
                    texts.flag(i, field, "is empty")
    return col


def _texts_table(block: _Block, fmt: str, allow_empty: bool) -> _Texts:
    """Single-turn formats of a table: checks and the alpaca join in pyarrow compute."""
    import pyarrow.compute as pc

    table = block.table
    texts = _Texts(0)
    if fmt == "alpaca":
        fields = set(block.first_fields())
        resp_field = "output" if "output" in fields or "response" not in fields else "response"
        inst = _arrow_check_text(texts, table, "instruction", allow_empty)
        inp = _arrow_check_text(texts, table, "input", True, nullable=True)
        if inst is not None and inp is not None:
            joined = pc.binary_join_element_wise(inst, inp, "\n")
            use = pc.fill_null(pc.greater(pc.binary_length(inp), 0), False)
            inst = pc.if_else(use, joined, inst)
    else:
        inst_field, resp_field = {
            "prompt_completion": ("prompt", "completion"),
            "question_answer": ("question", "answer"),
        }[fmt]
        inst = _arrow_check_text(texts, table, inst_field, allow_empty)
    resp = _arrow_check_text(texts, table, resp_field, allow_empty)
    n = table.num_rows
    texts.instruction = inst if inst is not None else [None] * n
    texts.response = resp if resp is not None else [None] * n
    return texts


def _texts_simple(block: _Block, fmt: str, allow_empty: bool) -> _Texts:
    if block.table is not None:
        return _texts_table(block, fmt, allow_empty)
    n = len(block)
    texts = _Texts(n)
    _records_problems(block, texts)
    if fmt == "alpaca":
        fields = set(block.first_fields()) if n else set()
        resp_field = "output" if "output" in fields or "response" not in fields else "response"
        inst = block.column("instruction")
        inp = block.column("input")
        resp = block.column(resp_field)
        _check_text(texts, inst, "instruction", allow_empty)
        for i, v in enumerate(inp):
            if v is not _MISSING and v is not None and type(v) is not str:
                texts.flag(i, "input", f"is a JSON {_json_type(v)}, expected a string or null")
        texts.instruction = [
            a + "\n" + b if type(b) is str and b and type(a) is str else a
            for a, b in zip(inst, inp, strict=True)
        ]
    else:
        inst_field, resp_field = {
            "prompt_completion": ("prompt", "completion"),
            "question_answer": ("question", "answer"),
        }[fmt]
        inst = block.column(inst_field)
        resp = block.column(resp_field)
        _check_text(texts, inst, inst_field, allow_empty)
        texts.instruction = inst
    _check_text(texts, resp, resp_field, allow_empty)
    texts.response = resp
    return texts


def _part_text(content: Any) -> Any:
    """OpenAI content: a string, or a list of parts whose text parts are concatenated."""
    if isinstance(content, list):
        out = []
        for part in content:
            if (
                isinstance(part, dict)
                and part.get("type") == "text"
                and isinstance(part.get("text"), str)
            ):
                out.append(part["text"])
            elif isinstance(part, str):
                out.append(part)
        return "".join(out)
    return content


def _conversation(
    turns: Any, key: str, role_key: str, text_key: str, first_only: bool
) -> tuple[str, str]:
    """Return (instruction, response) of one conversation or raise _Problem."""
    if turns is _MISSING:
        raise _Problem(key, "is missing")
    if not isinstance(turns, list):
        raise _Problem(key, f"is a JSON {_json_type(turns)}, expected a list of turns")
    users: list[str] = []
    assistants: list[str] = []
    for j, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise _Problem(f"{key}[{j}]", f"is a JSON {_json_type(turn)}, expected an object")
        role = turn.get(role_key, _MISSING)
        if type(role) is not str:
            raise _Problem(f"{key}[{j}].{role_key}", _value_problem(role) or "is not a string")
        text = turn.get(text_key, _MISSING)
        if text_key == "content":
            text = _part_text(text)
        if type(text) is not str:
            raise _Problem(f"{key}[{j}].{text_key}", _value_problem(text) or "is not a string")
        r = role.lower()
        if r in _USER_ROLES:
            if text and not text.isspace():
                if first_only and users:
                    if assistants:
                        break
                    continue
                users.append(text)
        elif r in _ASSISTANT_ROLES:
            if users and text and not text.isspace():
                assistants.append(text)
                if first_only:
                    break
        elif r not in _IGNORED_ROLES:
            raise _Problem(
                f"{key}[{j}].{role_key}",
                f"has the unknown role {role!r} (user: human/user; assistant: "
                "gpt/assistant/chatgpt/bing/bard/model/bot; ignored: system/tool/...)",
            )
    if not users:
        raise _Problem(key, "has no non-empty user turn")
    if not assistants:
        raise _Problem(key, "has no non-empty assistant turn after the first user turn")
    return "\n\n".join(users), "\n\n".join(assistants)


class _Problem(Exception):
    def __init__(self, field: str, reason: str) -> None:
        self.field, self.reason = field, reason


def _texts_conversation(block: _Block, fmt: str, first_only: bool) -> _Texts:
    n = len(block)
    texts = _Texts(n)
    _records_problems(block, texts)
    key, role_key, text_key = (
        ("conversations", "from", "value") if fmt == "sharegpt" else ("messages", "role", "content")
    )
    convs = block.column(key)
    ins, res = texts.instruction, texts.response
    for i, turns in enumerate(convs):
        if i in texts.problems:
            continue
        try:
            ins[i], res[i] = _conversation(turns, key, role_key, text_key, first_only)
        except _Problem as p:
            texts.flag(i, p.field, p.reason)
    return texts


def _block_texts(
    block: _Block, fmt: str, first_only: bool, allow_empty: bool = False
) -> tuple[str, _Texts]:
    if fmt == "auto":
        fields = block.first_fields()
        detected = detect_format(fields)
        if detected is None:
            raise PoolError(
                f"has an unknown record format (fields: {', '.join(map(repr, fields)) or 'none'})",
                path=block.path,
                **block.where(block.first_index()),
                hint="Expected alpaca (instruction, input, output|response), prompt/completion, "
                "question/answer, ShareGPT (conversations) or OpenAI messages (messages); "
                "rename the fields or pass format=",
            )
        fmt = detected
    if fmt in ("sharegpt", "messages"):
        block.to_records()
        return fmt, _texts_conversation(block, fmt, first_only)
    texts = _texts_simple(block, fmt, allow_empty)
    if block.raw_lines is not None and (texts.problems or not _plain_ids(block.table)):
        # The pyarrow fast path only serves clean files: bad records get their exact
        # reasons, and ids their exact str(), from the json path.
        block.to_records()
        texts = _texts_simple(block, fmt, allow_empty)
    return fmt, texts


# --------------------------------------------------------------------------------------
# load_pool
# --------------------------------------------------------------------------------------


def _unique_ids(ids: list[str]) -> list[str]:
    if len(set(ids)) == len(ids):
        return ids
    taken = set(ids)
    seen: Counter[str] = Counter()
    out = []
    for s in ids:
        seen[s] += 1
        if seen[s] == 1:
            out.append(s)
            continue
        k = seen[s]
        while f"{s}#{k}" in taken:
            k += 1
        seen[s] = k
        new = f"{s}#{k}"
        taken.add(new)
        out.append(new)
    return out


def _gather(col: Any, keep: np.ndarray, n: int) -> list[Any]:
    """``col[keep]`` as a list, for a python list or a pyarrow array."""
    if isinstance(col, list):
        return col if keep.size == n else [col[i] for i in keep.tolist()]
    import pyarrow as pa

    return (col if keep.size == n else col.take(pa.array(keep))).to_pylist()


def _build_pool(
    blocks: list[tuple[_Block, _Texts]],
    skip_bad: bool,
    limit: int | None,
    extra_skipped: Sequence[SkippedRecord] = (),
) -> Pool:
    ids: list[str] = []
    ins: list[str] = []
    res: list[str] = []
    src: list[str] = []
    segments = []
    index_parts = []
    skipped: list[SkippedRecord] = []
    offset = 0
    for block, texts in blocks:
        n = len(block)
        bad = np.array(sorted(texts.problems), dtype=np.int64)
        keep = (
            np.setdiff1d(np.arange(n, dtype=np.int64), bad)
            if bad.size
            else np.arange(n, dtype=np.int64)
        )
        if limit is not None and limit - len(ids) < keep.size:
            # Only records before the limit is reached count (bad ones included).
            remaining = max(limit - len(ids), 0)
            cutoff = int(keep[remaining - 1]) + 1 if remaining else 0
            keep = keep[:remaining]
            bad = bad[bad < cutoff]
        if bad.size and not skip_bad:
            first = int(bad[0])
            field, reason = texts.problems[first]
            hint = _BAD_RECORD_HINT
            if reason == "is empty":
                hint += ", or allow_empty=True (--allow-empty) to keep empty texts"
            raise PoolError(reason, path=block.path, field=field, hint=hint, **block.where(first))
        for i in bad.tolist():
            field, reason = texts.problems[i]
            skipped.append(
                SkippedRecord(
                    block.path, block.position(i), f"field {field!r} {reason}" if field else reason
                )
            )
        ids.extend(_gather(block.ids(), keep, n))
        ins.extend(_gather(texts.instruction, keep, n))
        res.extend(_gather(texts.response, keep, n))
        src.extend([block.path] * keep.size)
        segments.append(block.segment())
        index_parts.append(keep.astype(np.int64) + offset)
        offset += n
    index = np.concatenate(index_parts) if index_parts else np.zeros(0, dtype=np.int64)
    skipped.extend(extra_skipped)
    return Pool(_unique_ids(ids), ins, res, src, _RecordStore(segments, index), skipped)


def load_pool(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    *,
    format: str = "auto",
    first_turn_only: bool = False,
    skip_bad: bool = False,
    limit: int | None = None,
    allow_empty: bool = False,
) -> Pool:
    """Read a pool of instruction/response samples.

    Parameters
    ----------
    source : str, path-like, list of those, or None
        A pool file, a directory of pool files, a ``datasets`` ``save_to_disk`` folder, or
        a list of those (read in order). ``None`` loads the embedded default pool
        (ShareGPT, see :func:`tritondiv.default_pool`; it always skips its conversations
        that give no sample, listing them in :attr:`Pool.skipped`). See the module docstring for the
        file types and record formats.
    format : str
        ``"auto"`` (detect per file from its first record) or one of ``"alpaca"``,
        ``"prompt_completion"``, ``"question_answer"``, ``"sharegpt"``, ``"messages"``,
        applied to every file.
    first_turn_only : bool
        For conversations, keep only the first user turn and the first assistant reply
        after it (default: all user turns / all assistant turns, joined with a blank line).
    skip_bad : bool
        Skip bad records (listed with their reasons in :attr:`Pool.skipped`) instead of
        raising :class:`PoolError`.
    limit : int, optional
        Keep only the first ``limit`` samples; reading stops once they are found.
    allow_empty : bool
        Accept empty (or whitespace-only) instruction and response fields of the
        single-turn formats instead of treating them as bad records (``codealpaca_2k`` in
        the shared data has two empty ``output`` fields). Conversations still need a
        non-empty user turn and assistant reply.

    Returns
    -------
    Pool

    Raises
    ------
    PoolError
        A missing, empty or unreadable file, an unknown format, or (without ``skip_bad``)
        a bad record; the message names the file, line/record and field.
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {format!r}")
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int | np.integer) or limit < 0
    ):
        raise ValueError(f"limit must be a non-negative integer or None, got {limit!r}")
    if source is None:
        if format not in ("auto", "sharegpt"):
            raise ValueError(
                f"the default pool is in ShareGPT format; format={format!r} does not apply"
            )
        from tritondiv.sharegpt import default_pool

        return default_pool(limit=limit, first_turn_only=first_turn_only)
    sources = [source] if isinstance(source, str | os.PathLike) else list(source)
    if not sources:
        raise PoolError(
            "no pool sources given", hint="Pass a file, a directory, or None for the default pool"
        )
    files = [f for s in sources for f in _expand(s)]
    blocks: list[tuple[_Block, _Texts]] = []
    kept = 0
    for path, rel in files:
        if limit is not None and kept >= limit:
            break
        want = None if limit is None else limit - kept
        cap = None if want is None else max(2 * want, 16)
        while True:
            read = _read(path, rel, cap)
            parsed = [(b, *_block_texts(b, format, first_turn_only, allow_empty)) for b in read]
            good = sum(len(b) - len(t.problems) for b, _, t in parsed)
            if want is None or good >= want or all(b.complete for b, _, _ in parsed):
                break
            cap = 4 * cap  # bad records ate into the window: read more
        for b, _, t in parsed:
            blocks.append((b, t))
            kept += len(b) - len(t.problems)
    return _build_pool(blocks, skip_bad, limit)


# --------------------------------------------------------------------------------------
# CLI helpers
# --------------------------------------------------------------------------------------


def add_pool_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``POOL`` (optional positional), ``--format``, ``--first-turn-only``,
    ``--skip-bad``, ``--allow-empty`` and ``--limit`` to a subcommand's parser."""
    parser.add_argument(
        "pool",
        nargs="?",
        default=None,
        metavar="POOL",
        help="pool file (.jsonl/.json/.parquet, optionally .gz), directory, or save_to_disk "
        "dataset (default: the embedded ShareGPT pool)",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="auto",
        help="record format (default: detect per file from its first record)",
    )
    parser.add_argument(
        "--first-turn-only",
        action="store_true",
        help="conversations: only the first user turn and the first reply after it",
    )
    parser.add_argument(
        "--skip-bad",
        action="store_true",
        help="skip bad records (reported with reasons) instead of stopping at the first",
    )
    parser.add_argument(
        "--allow-empty",
        action="store_true",
        help="accept empty instruction/response fields (single-turn formats) instead of treating them as bad",
    )
    parser.add_argument(
        "--limit", type=int, default=None, metavar="N", help="use only the first N samples"
    )


def summarize_skipped(skipped: Sequence[SkippedRecord], most: int = 5) -> str:
    """One line: ``skipped K records: 3 × reason (first: file line 4); ...``."""
    counts = Counter(s.reason for s in skipped)
    first: dict[str, SkippedRecord] = {}
    for s in skipped:
        first.setdefault(s.reason, s)
    parts = [
        f"{c} × {reason} (first: {first[reason].path} {first[reason].position})"
        for reason, c in counts.most_common(most)
    ]
    if len(counts) > most:
        parts.append(f"... {len(counts) - most} more reasons")
    return f"skipped {len(skipped)} records: " + "; ".join(parts)


def pool_from_args(args: argparse.Namespace) -> Pool:
    """Load the pool named by :func:`add_pool_arguments`' options.

    Prints ``skipped K records: reasons...`` to stderr when records were skipped.
    """
    pool = load_pool(
        args.pool,
        format=args.format,
        first_turn_only=args.first_turn_only,
        skip_bad=args.skip_bad,
        limit=args.limit,
        allow_empty=getattr(args, "allow_empty", False),
    )
    if pool.skipped:
        print(summarize_skipped(pool.skipped), file=sys.stderr)
    return pool
