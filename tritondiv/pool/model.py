"""The pool's data model: :class:`Pool` (columns), :class:`SkippedRecord`, :class:`PoolError`,
the id rule (:func:`unique_ids`) and the store of the original records (lazy for columnar
sources).

This is the lowest floor of :mod:`tritondiv.pool`: it imports nothing from the package.
"""

from __future__ import annotations

import hashlib
import json
import operator
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np

__all__ = [
    "MISSING",
    "JsonLines",
    "JsonRecords",
    "Pool",
    "PoolError",
    "RecordStore",
    "SkippedRecord",
    "TextColumn",
    "arrow_numpy",
    "position",
    "summarize_skipped",
    "unique_ids",
]

#: A field absent from a record (distinct from a JSON null).
MISSING: Any = object()


# --------------------------------------------------------------------------------------
# errors and skipped records
# --------------------------------------------------------------------------------------


def position(line: int | None = None, record: int | None = None) -> str | None:
    """``"line 12"`` (1-based line of a ``.jsonl``) or ``"record 3"`` (0-based index)."""
    if line is not None:
        return f"line {line}"
    if record is not None:
        return f"record {record}"
    return None


class PoolError(ValueError):
    """A pool that cannot be read, or a bad record in it.

    The message names the file, the line (``.jsonl``) or 0-based record index (``.json``,
    parquet, ``save_to_disk``), the field, and what to do about it. The same facts are in
    the attributes ``path``, ``line``, ``record`` and ``field`` (``None`` when not
    applicable); ``reason`` is the bare reason (e.g. ``"is empty"``).
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
        self.hint = hint
        where = [p for p in (self.path, position(line, record)) if p]
        if field is not None:
            where.append(f"field {field!r}")
        text = f"{', '.join(where)}: {message}" if where else message
        if hint:
            text = f"{text}. {hint}"
        super().__init__(text)


@dataclass(frozen=True)
class SkippedRecord:
    """A record left out of a pool loaded with ``skip_bad=True``.

    Attributes
    ----------
    path : str
        The file the record is in.
    position : str
        ``"line 12"`` (``.jsonl``, 1-based) or ``"record 3"`` (0-based index); ``"split"``
        for an empty split of a ``DatasetDict`` folder (skipped whole, see
        :func:`tritondiv.pool.load_pool`).
    reason : str
        Why it was skipped, naming the field (e.g. ``"field 'output' is empty"``).
    """

    path: str
    position: str
    reason: str


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


def unique_ids(ids: list[str]) -> list[str]:
    """The pool's id rule: an id seen before gets the suffix ``#2``, ``#3``, ... (skipping
    suffixed ids that are taken), so that every id is unique."""
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


# --------------------------------------------------------------------------------------
# records storage (lazy for columnar sources)
# --------------------------------------------------------------------------------------


class JsonRecords:
    """Records stored as one JSON text per record (a jsonl file's lines, the default pool's
    cache).

    ``texts`` is a list of str, a pyarrow string array, or a callable returning one (read
    on first use); ``length`` is its length when ``texts`` is a callable.
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


class JsonLines(JsonRecords):
    """Records stored as lines of a jsonl file: ``starts``/``ends`` are each record's byte
    range in ``data`` (the file's bytes, a pyarrow ``Buffer``) or, when ``data`` is a path,
    in that file, memory-mapped only when records are asked for (a file changed since it
    was read is then an error). A record is decoded and parsed only when asked for."""

    def __init__(self, data: Any, starts: np.ndarray, ends: np.ndarray) -> None:
        super().__init__(None, len(starts))
        self._data, self._starts, self._ends = data, starts, ends
        self._stamp = None
        if isinstance(data, str | os.PathLike):
            st = os.stat(data)
            self._stamp = (st.st_size, st.st_mtime_ns)

    def _buffer(self) -> Any:
        if self._stamp is None:
            return self._data
        import pyarrow as pa

        st = os.stat(self._data)
        if (st.st_size, st.st_mtime_ns) != self._stamp:
            raise PoolError(
                "changed after the pool was read (its records are read back from it)",
                path=self._data,
                hint="Load the pool again",
            )
        return pa.memory_map(str(self._data)).read_buffer()

    @property
    def texts(self) -> list[str]:
        return self.strings(np.arange(len(self._starts), dtype=np.int64))

    def strings(self, local: np.ndarray) -> list[str]:
        """The lines at ``local`` as str (the file is valid UTF-8: checked when read)."""
        view = memoryview(self._buffer())
        starts, ends = self._starts[local].tolist(), self._ends[local].tolist()
        return [str(view[a:b], "utf-8") for a, b in zip(starts, ends, strict=True)]

    def take(self, local: np.ndarray) -> list[dict[str, Any]]:
        loads = json.loads
        return [loads(s) for s in self.strings(np.asarray(local, dtype=np.int64))]


class RecordStore:
    """The pool's original records: segments (python lists, pyarrow tables or
    :class:`JsonRecords`) gathered lazily through a global index, so that a parquet pool
    never builds dicts it does not need."""

    def __init__(self, segments: list[Any], index: np.ndarray | None = None) -> None:
        self.segments = segments
        sizes = np.array([len(s) for s in segments], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        total = int(self.starts[-1])
        self.index = np.arange(total, dtype=np.int64) if index is None else index
        self._cache: list[dict[str, Any]] | None = None

    def __len__(self) -> int:
        return len(self.index)

    def take(self, idx: np.ndarray) -> RecordStore:
        return RecordStore(self.segments, self.index[idx])

    def _gather(self, fetch: Callable[[Any, np.ndarray], list[Any]]) -> list[Any]:
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
            return [r.get(name, MISSING) if isinstance(r, dict) else MISSING for r in self._cache]
        return self._gather(lambda seg, local: _take_column(seg, local, name))


def _take_records(seg: Any, local: np.ndarray) -> list[Any]:
    if isinstance(seg, list):
        return [seg[i] for i in local.tolist()]
    if isinstance(seg, JsonRecords):
        return seg.take(local)
    return seg.take(local).to_pylist()


def _take_column(seg: Any, local: np.ndarray, name: str) -> list[Any]:
    if isinstance(seg, list):
        return [
            seg[i].get(name, MISSING) if isinstance(seg[i], dict) else MISSING
            for i in local.tolist()
        ]
    if isinstance(seg, JsonRecords):
        return [r.get(name, MISSING) for r in seg.take(local)]
    if name not in seg.column_names:
        return [MISSING] * len(local)
    return seg.column(name).take(local).to_pylist()


# --------------------------------------------------------------------------------------
# text columns
# --------------------------------------------------------------------------------------


def arrow_numpy(arr: Any) -> np.ndarray:
    """A pyarrow boolean or integer array (or ChunkedArray) without nulls as a numpy array,
    read from its buffers (pyarrow's own ``to_numpy`` imports pandas, a second's start-up)."""
    import pyarrow as pa

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.null_count:
        raise ValueError("arrow_numpy: the array has nulls")
    n, off = len(arr), arr.offset
    if not n:
        return np.zeros(0, dtype=bool if pa.types.is_boolean(arr.type) else np.int64)
    buf = arr.buffers()[1]
    if pa.types.is_boolean(arr.type):
        bits = np.unpackbits(np.frombuffer(buf, dtype=np.uint8), bitorder="little")
        return bits[off : off + n].astype(bool)
    kind = "i" if pa.types.is_signed_integer(arr.type) else "u"
    dtype = np.dtype(f"<{kind}{arr.type.bit_width // 8}")
    return np.frombuffer(buf, dtype=dtype)[off : off + n]


#: Texts per step when a column is iterated (one ``to_pylist`` per step, not per text).
_ITER_STEP = 4096


def _arrow_text(values: Any) -> Any:
    """``values`` (a list of str or a pyarrow string array) as a pyarrow ``ChunkedArray`` of
    ``large_string``, or ``None`` when they are not all text Arrow can hold (a lone
    surrogate, a non-str value): such a column stays a Python list."""
    import pyarrow as pa

    try:
        if isinstance(values, pa.ChunkedArray | pa.Array):
            arr = values
            if pa.types.is_dictionary(arr.type):
                arr = arr.cast(arr.type.value_type)
        else:
            arr = pa.array(values, pa.large_string())
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            return None
        if arr.null_count:
            return None
        if not pa.types.is_large_string(arr.type):
            arr = arr.cast(pa.large_string())
    except (pa.ArrowException, UnicodeEncodeError, TypeError):
        return None
    return arr if isinstance(arr, pa.ChunkedArray) else pa.chunked_array([arr], pa.large_string())


class TextColumn(Sequence[str]):
    """A read-only sequence of str over a pyarrow string column (the pool's storage).

    ``len``, indexing (an int gives a ``str``; a slice gives a :class:`TextColumn`, without
    copying), iteration (in steps of a few thousand texts) and ``==`` with a list work as on
    a list of str; :meth:`to_pylist` gives one. :attr:`arrow` is the pyarrow
    ``ChunkedArray`` (``None`` for the rare column that Arrow cannot hold, e.g. a text with
    a lone surrogate given to :class:`Pool` directly, which is kept as a list).
    """

    __slots__ = ("_data", "_starts")

    def __init__(self, values: Any) -> None:
        if isinstance(values, TextColumn):
            values = values._data
        arrow = _arrow_text(values)
        self._data: Any = arrow if arrow is not None else list(values)
        self._starts: np.ndarray | None = None  # first index of each chunk, when needed

    def _item(self, k: int) -> str:
        data = self._data
        if data.num_chunks == 1:
            return str(data.chunk(0)[k].as_py())
        if self._starts is None:
            sizes = [len(c) for c in data.chunks]
            self._starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        c = int(np.searchsorted(self._starts, k, side="right")) - 1
        return str(data.chunk(c)[k - int(self._starts[c])].as_py())

    @property
    def arrow(self) -> Any:
        """The pyarrow ``ChunkedArray`` (``large_string``) holding the texts, or ``None``."""
        return None if isinstance(self._data, list) else self._data

    def __len__(self) -> int:
        return len(self._data)

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> TextColumn: ...

    def __getitem__(self, i: Any) -> Any:
        data = self._data
        if isinstance(i, slice):
            if isinstance(data, list):
                return TextColumn(data[i])
            start, stop, step = i.indices(len(data))
            if step == 1:
                return TextColumn(data.slice(start, max(stop - start, 0)))
            return self.take(np.arange(start, stop, step, dtype=np.int64))
        k = operator.index(i)
        n = len(data)
        if k < 0:
            k += n
        if not 0 <= k < n:
            raise IndexError(f"text index {i} out of range for {n} texts")
        return data[k] if isinstance(data, list) else self._item(k)

    def __iter__(self) -> Iterator[str]:
        data = self._data
        if isinstance(data, list):
            yield from data
            return
        for chunk in data.chunks:
            for start in range(0, len(chunk), _ITER_STEP):
                yield from chunk.slice(start, _ITER_STEP).to_pylist()

    def to_pylist(self) -> list[str]:
        """The texts as a list of str."""
        return list(self._data) if isinstance(self._data, list) else self._data.to_pylist()

    def take(self, indices: np.ndarray) -> TextColumn:
        """The texts at ``indices`` (non-negative, in range), as a new column."""
        idx = np.asarray(indices, dtype=np.int64)
        if isinstance(self._data, list):
            data = self._data
            return TextColumn([data[i] for i in idx.tolist()])
        return TextColumn(self._data.take(idx))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TextColumn):
            a, b = self.arrow, other.arrow
            if a is not None and b is not None:
                return bool(len(a) == len(b) and a.equals(b))
            return self.to_pylist() == other.to_pylist()
        if isinstance(other, list | tuple):
            return len(other) == len(self) and self.to_pylist() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __add__(self, other: Any) -> list[str]:
        return self.to_pylist() + list(other)

    def __radd__(self, other: Any) -> list[str]:
        return list(other) + self.to_pylist()

    def __repr__(self) -> str:
        head = self[:3].to_pylist() if len(self) else []
        more = ", ..." if len(self) > 3 else ""
        return f"TextColumn({len(self)} texts: {repr(head)[1:-1]}{more})"

    def hash_into(self, h: Any) -> None:
        """Feed the fingerprint: the lengths (code points, int64 little-endian) then the UTF-8
        of the concatenated texts (lengths make the concatenation unambiguous)."""
        data = self._data
        if isinstance(data, list):
            lengths = np.fromiter(map(len, data), dtype="<i8", count=len(data))
            h.update(lengths.tobytes())
            h.update("".join(data).encode("utf-8", "surrogatepass"))
            return
        import pyarrow.compute as pc

        for chunk in data.chunks:
            h.update(arrow_numpy(pc.utf8_length(chunk)).astype("<i8").tobytes())
        for chunk in data.chunks:
            if not len(chunk):
                continue
            offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int64)
            lo, hi = int(offsets[chunk.offset]), int(offsets[chunk.offset + len(chunk)])
            if hi > lo:
                h.update(memoryview(chunk.buffers()[2])[lo:hi])


# --------------------------------------------------------------------------------------
# the pool
# --------------------------------------------------------------------------------------


class Pool:
    """Samples as columns: ``ids``, ``instruction``, ``response``, ``source``.

    The columns are :class:`TextColumn` s (read-only sequences of str over pyarrow
    ``large_string`` arrays; ``.arrow`` gives the array, ``.to_pylist()`` a list).

    Parameters
    ----------
    ids, instruction, response, source : sequence of str or pyarrow string array
        One entry per sample. ``source`` is the file each sample came from.
    records : list of dict or RecordStore
        The original record of each sample, fields as read (written back verbatim by
        ``tritondiv select``). Columnar sources materialize it lazily on first access.
    skipped : list of SkippedRecord, optional
        Records left out while loading (``skip_bad=True``), with their reasons.
    """

    def __init__(
        self,
        ids: Any,
        instruction: Any,
        response: Any,
        source: Any,
        records: list[dict[str, Any]] | RecordStore,
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
        self.ids = TextColumn(ids)
        self.instruction = TextColumn(instruction)
        self.response = TextColumn(response)
        self.source = TextColumn(source)
        self._records = (
            records if isinstance(records, RecordStore) else RecordStore([list(records)])
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

    def component(self, name: str) -> TextColumn:
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
                "subset indices must be a 1-D sequence of integers, "
                f"got {idx.dtype} with shape {idx.shape}"
            )
        n = len(self)
        if idx.size and (int(idx.min()) < -n or int(idx.max()) >= n):
            raise IndexError(
                f"subset indices must lie in [0, {n}), "
                f"got range [{int(idx.min())}, {int(idx.max())}]"
            )
        idx = np.where(idx < 0, idx + n, idx).astype(np.int64)
        return Pool(
            self.ids.take(idx),
            self.instruction.take(idx),
            self.response.take(idx),
            self.source.take(idx),
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
        missing = [i for i, v in enumerate(values) if v is MISSING]
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
            # the concatenated texts (TextColumn.hash_into).
            h = hashlib.sha256(b"tritondiv.pool.v1\0")
            h.update(len(self).to_bytes(8, "little"))
            for col in (self.ids, self.instruction, self.response):
                col.hash_into(h)
            self._fingerprint = h.hexdigest()
        return self._fingerprint
