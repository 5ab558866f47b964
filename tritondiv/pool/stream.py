"""Big ``.jsonl`` files read in bounded steps, their checked columns spilled to a
memory-mapped Arrow cache.

:func:`load_streamed` reads a plain ``.jsonl`` file one step (a few MiB cut at line ends,
:func:`tritondiv.pool.readers.jsonl.steps`) at a time: each step is parsed (pyarrow's JSON
reader, or ``json`` for the steps and formats it cannot read exactly), checked by the same
record rule as every other input (:func:`~tritondiv.pool.extract.block_texts`), and its kept
columns (ids, instruction, response, source, and each record's byte range in the file) are
written as one record batch of an uncompressed Arrow IPC file. The file is then
memory-mapped, so the pool's :class:`~tritondiv.pool.model.TextColumn` s are zero-copy
views of it: the texts take page cache, not process memory, and neither the file's records
nor its texts are ever all in memory as Python objects.

The cache: ``cache_dir()/pools/jsonl-<ident>-<size>-<mtime_ns>-<crc32>.arrow`` (the folder of
:func:`tritondiv._io.cache_dir`: ``$TRITONDIV_CACHE`` or ``~/.cache/tritondiv``), where
``ident`` hashes the file's resolved path and inode, the path as given and the name used in
fallback ids, the loader options and the package and cache layout versions. A second load
of an unchanged file maps the cached file (its CRC-32, in its name, is checked first: a
truncated or damaged file is removed and rebuilt, never trusted). A changed file (size or
mtime) is a miss; building it removes the entries of the file's earlier states. Files are
built beside their final name and renamed into place (two processes loading one file at
once both get a whole file). ``cache=False`` writes nothing: the columns then stay in
memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tritondiv.pool.extract import Texts, block_texts
from tritondiv.pool.formats import FieldMap
from tritondiv.pool.model import JsonLines, PoolError, SkippedRecord, arrow_numpy
from tritondiv.pool.readers.base import Block
from tritondiv.pool.readers.jsonl import NotStreamable, first_record_fields, steps

__all__ = ["CACHE_VERSION", "Part", "block_part", "cache_folder", "load_streamed"]

#: Bumped whenever the cached layout or what is cached changes.
CACHE_VERSION = "pool-jsonl-v1"

_BAD_RECORD_HINT = "Fix the record, or pass skip_bad=True (--skip-bad) to skip bad records"
_COLUMNS = ("ids", "instruction", "response", "source")


def _hint(reason: str) -> str:
    if reason == "is empty":
        return _BAD_RECORD_HINT + ", or allow_empty=True (--allow-empty) to keep empty texts"
    if "max_text_chars" in reason:
        return _BAD_RECORD_HINT + ", or max_text_chars=None to accept longer texts"
    return _BAD_RECORD_HINT


@dataclass
class Part:
    """The kept samples of one block or file: pyarrow ``large_string`` chunks per column,
    the record store segment they come from and their indices in it, the skipped records,
    and ``size``, the number of records of the segment."""

    ids: list[Any]
    instruction: list[Any]
    response: list[Any]
    source: list[Any]
    segment: Any
    index: np.ndarray
    skipped: list[SkippedRecord] = field(default_factory=list)
    unique: bool | None = None  # whether the ids are unique (None: not known)

    @property
    def kept(self) -> int:
        return int(self.index.size)


def _gather(col: Any, keep: np.ndarray, n: int) -> list[Any]:
    """``col[keep]`` as pyarrow ``large_string`` chunks, for a python list or a pyarrow
    (chunked) array, without copying the texts of a whole column (the kept texts are all
    valid text: bad ones were flagged)."""
    import pyarrow as pa

    if isinstance(col, list):
        values = col if keep.size == n else [col[i] for i in keep.tolist()]
        return [pa.array(values, pa.large_string())]
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    out = col if keep.size == n else col.take(pa.array(keep))
    if not pa.types.is_large_string(out.type):
        out = out.cast(pa.large_string())  # new offsets, the same text buffer
    return list(out.chunks) if isinstance(out, pa.ChunkedArray) else [out]


def block_part(block: Block, texts: Texts, skip_bad: bool, limit: int | None = None) -> Part:
    """The kept samples of a checked block (at most ``limit``; records past the limit do
    not count, bad ones included); a bad record raises :class:`PoolError` unless
    ``skip_bad``."""
    import pyarrow as pa

    n = len(block)
    bad = np.array(sorted(texts.problems), dtype=np.int64)
    keep = (
        np.setdiff1d(np.arange(n, dtype=np.int64), bad)
        if bad.size
        else np.arange(n, dtype=np.int64)
    )
    if limit is not None and limit < keep.size:
        cutoff = int(keep[limit - 1]) + 1 if limit else 0
        keep = keep[:limit]
        bad = bad[bad < cutoff]
    if bad.size and not skip_bad:
        first = int(bad[0])
        fname, reason = texts.problems[first]
        raise PoolError(
            reason, path=block.path, field=fname, hint=_hint(reason), **block.where(first)
        )
    skipped = []
    for i in bad.tolist():
        fname, reason = texts.problems[i]
        skipped.append(
            SkippedRecord(
                block.path, block.position(i), f"field {fname!r} {reason}" if fname else reason
            )
        )
    source = pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(keep.size, np.int32)), pa.array([block.path], pa.large_string())
    ).dictionary_decode()
    return Part(
        _gather(texts.ids, keep, n),
        _gather(texts.instruction, keep, n),
        _gather(texts.response, keep, n),
        [source],
        block.segment(),
        keep.astype(np.int64),
        skipped,
    )


# --------------------------------------------------------------------------------------
# the cache file
# --------------------------------------------------------------------------------------


def cache_folder() -> Path:
    """The folder of the pool cache: ``cache_dir()/pools``."""
    from tritondiv._io import cache_dir

    return cache_dir() / "pools"


def _schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [(name, pa.large_string()) for name in _COLUMNS]
        + [("start", pa.int64()), ("end", pa.int64())]
    )


def _ident(path: Path, rel: str, options: dict[str, Any]) -> tuple[str, str]:
    """(``ident``, ``stamp``) of a file's cache entry (see the module docstring)."""
    import tritondiv

    st = path.stat()
    key = {
        "layout": CACHE_VERSION,
        "version": tritondiv.__version__,
        "resolved": str(path.resolve()),
        "inode": [st.st_dev, st.st_ino],
        "given": str(path),
        "rel": rel,
        **options,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    return digest, f"{st.st_size}-{st.st_mtime_ns}"


def _file_crc(path: Path) -> int:
    crc = 0
    with path.open("rb") as fh:
        while block := fh.read(1 << 22):
            crc = zlib.crc32(block, crc)
    return crc


class _CrcSink:
    """A binary file that keeps the CRC-32 of what is written to it."""

    def __init__(self, fh: Any) -> None:
        self.fh, self.crc, self.pos, self.closed = fh, 0, 0, False

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.crc = zlib.crc32(view, self.crc)
        self.fh.write(view)
        self.pos += view.nbytes
        return view.nbytes

    def tell(self) -> int:
        return self.pos

    def flush(self) -> None:
        self.fh.flush()

    def close(self) -> None:
        self.closed = True


def _open_cached(path: Path, ident: str, stamp: str) -> Part | None:
    """The cached part of ``path``, or None (a damaged entry is removed)."""
    folder = cache_folder()
    for entry in sorted(folder.glob(f"jsonl-{ident}-{stamp}-*.arrow")):
        part = None
        try:
            want = int(entry.name.rsplit("-", 1)[1].split(".")[0], 16)
            if _file_crc(entry) == want:
                part = _map(entry, path, ident)
        except (OSError, ValueError, PoolError):
            part = None
        except Exception:  # pyarrow's errors on a damaged file
            part = None
        if part is not None:
            return part
        with contextlib.suppress(OSError):
            entry.unlink()
    return None


def _map(entry: Path, path: Path, ident: str) -> Part:
    """The part held by a cache file, its columns memory-mapped."""
    import pyarrow as pa

    reader = pa.ipc.open_file(pa.memory_map(str(entry)))
    k = reader.num_record_batches
    if k == 0 or not reader.schema.equals(_schema()):
        raise PoolError("is not a pool cache file", path=entry)
    _, meta = reader.get_batch_with_custom_metadata(k - 1)
    info = json.loads(meta[b"tritondiv"]) if meta is not None and b"tritondiv" in meta else {}
    table = pa.Table.from_batches([reader.get_batch(i) for i in range(k)], schema=_schema())
    if info.get("ident") != ident or info.get("rows") != table.num_rows:
        raise PoolError("is not this file's pool cache", path=entry)
    skipped = [SkippedRecord(str(path), p, r) for p, r in info["skipped"]]
    return _part_of(table, path, skipped, info["unique"])


def _part_of(table: Any, path: Path, skipped: list[SkippedRecord], unique: bool | None) -> Part:
    n = table.num_rows
    starts = arrow_numpy(table.column("start")) if n else np.zeros(0, np.int64)
    ends = arrow_numpy(table.column("end")) if n else np.zeros(0, np.int64)
    ids, instruction, response, source = (list(table.column(c).chunks) for c in _COLUMNS)
    return Part(
        ids,
        instruction,
        response,
        source,
        segment=JsonLines(path, starts, ends),
        index=np.arange(n, dtype=np.int64),
        skipped=skipped,
        unique=unique,
    )


def _batch(part: Part, starts: np.ndarray, ends: np.ndarray) -> Any:
    import pyarrow as pa

    def one(chunks: list[Any]) -> Any:
        return chunks[0] if len(chunks) == 1 else pa.concat_arrays(chunks)

    cols = [one(getattr(part, c)) for c in _COLUMNS]
    idx = part.index
    cols += [pa.array(starts[idx]), pa.array(ends[idx])]
    return pa.RecordBatch.from_arrays(cols, schema=_schema())


def _unique(ids: list[Any]) -> bool:
    import pyarrow as pa
    import pyarrow.compute as pc

    n = sum(len(c) for c in ids)
    return not n or len(pc.unique(pa.chunked_array(ids, pa.large_string()))) == n


class _Spill:
    """Where the checked batches of one file go: a temporary cache file (``folder``) or, with
    the cache off, memory."""

    def __init__(self, folder: Path | None) -> None:
        import pyarrow as pa

        self.batches: list[Any] = []
        self.ids: list[Any] = []
        self.tmp: Path | None = None
        self.writer: Any = None
        self.skipped: list[SkippedRecord] = []
        if folder is None:
            return
        from tritondiv._io import temporary_name

        folder.mkdir(parents=True, exist_ok=True)
        self.tmp = folder / temporary_name("jsonl.arrow")
        self.fh = self.tmp.open("xb")
        self.sink = _CrcSink(self.fh)
        self.writer = pa.ipc.new_file(self.sink, _schema())

    def add(self, part: Part, starts: np.ndarray, ends: np.ndarray) -> None:
        batch = _batch(part, starts, ends)
        self.ids.append(batch.column(0))
        self.skipped.extend(part.skipped)
        if self.writer is None:
            self.batches.append(batch)
        else:
            self.writer.write_batch(batch)

    def abort(self) -> None:
        if self.writer is not None:
            with contextlib.suppress(Exception):
                self.writer.close()
            self.fh.close()
            assert self.tmp is not None
            with contextlib.suppress(OSError):
                self.tmp.unlink()
            self.writer = None

    def finish(self, path: Path, ident: str, stamp: str) -> Part:
        import pyarrow as pa

        unique = _unique(self.ids)
        if self.writer is None:
            table = pa.Table.from_batches(self.batches, schema=_schema())
            return _part_of(table, path, self.skipped, unique)
        rows = sum(len(c) for c in self.ids)
        info = {
            "ident": ident,
            "rows": rows,
            "unique": unique,
            "skipped": [[s.position, s.reason] for s in self.skipped],
        }
        empty = pa.RecordBatch.from_pylist([], schema=_schema())
        self.writer.write_batch(empty, custom_metadata={"tritondiv": json.dumps(info)})
        self.writer.close()
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        assert self.tmp is not None
        final = self.tmp.parent / f"jsonl-{ident}-{stamp}-{self.sink.crc:08x}.arrow"
        part = _map(self.tmp, path, ident)  # the mapping outlives the rename
        os.replace(self.tmp, final)
        for old in self.tmp.parent.glob(f"jsonl-{ident}-*.arrow"):
            if not old.name.startswith(f"jsonl-{ident}-{stamp}-"):
                with contextlib.suppress(OSError):
                    old.unlink()  # an earlier state of the file
        return part


def _prefetch(items: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """``items``, produced ahead by a worker thread (at most ``depth`` waiting): the next
    step is read and parsed (pyarrow, numpy and file reads release the GIL) while this
    thread checks and writes the current one. The worker stops when the consumer does."""
    done = object()
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
        except BaseException as exc:  # handed to the consumer
            put((False, exc))
            return
        put((True, done))

    worker = threading.Thread(target=work, name="tritondiv-pool-steps", daemon=True)
    worker.start()
    try:
        while True:
            ok, item = q.get()
            if not ok:
                raise item
            if item is done:
                return
            yield item
    finally:
        stop.set()
        worker.join()


def load_streamed(
    path: Path,
    rel: str,
    *,
    format: str,
    first_turn_only: bool,
    skip_bad: bool,
    allow_empty: bool,
    max_text_chars: int | None,
    fmap: FieldMap | None,
    cache: bool = True,
) -> Part | None:
    """The kept samples of a plain ``.jsonl`` file, read in steps and (``cache``) spilled to
    and mapped from the pool cache (see the module docstring); None when the file is not
    one the steps read exactly as the in-memory path (a byte order mark, invalid UTF-8,
    a first line that is no JSON object): the caller then reads it in memory."""
    mapped = fmap is not None and fmap.maps_texts
    head = first_record_fields(path, mapped)
    if head is None:
        return None
    options = {
        "format": format,
        "first_turn_only": first_turn_only,
        "skip_bad": skip_bad,
        "allow_empty": allow_empty,
        "max_text_chars": max_text_chars,
        "fmap": None if fmap is None else [fmap.instruction, fmap.response, fmap.id],
    }
    ident, stamp = _ident(path, rel, options)
    folder: Path | None = None
    if cache:
        try:
            folder = cache_folder()
            hit = _open_cached(path, ident, stamp)
            if hit is not None:
                return hit
            from tritondiv._io import clean_stale_temporaries

            clean_stale_temporaries(folder)
        except OSError:
            folder = None  # no cache folder to write to: the columns stay in memory
    fields, flat = head
    try:
        spill = _Spill(folder)
    except OSError:
        spill = _Spill(None)
    try:
        for block, starts, ends in _prefetch(steps(path, fields, flat)):
            block.rel = rel
            _, texts = block_texts(
                block, format, first_turn_only, allow_empty, max_text_chars, fmap
            )
            spill.add(block_part(block, texts, skip_bad), starts, ends)
        if not spill.ids:
            raise PoolError(
                "is empty (no JSON lines)",
                path=path,
                hint="Pass a file with one JSON object per line",
            )
        return spill.finish(path, ident, stamp)
    except NotStreamable:
        spill.abort()
        return None
    except BaseException:
        spill.abort()
        raise
