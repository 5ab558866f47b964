"""``.jsonl`` (and ``.jsonl.gz``): one JSON object per line.

Blank lines are skipped; lines split on ``"\\n"`` only (JSON strings may hold raw U+2028 and
friends); ``\\r\\n`` and a UTF-8 byte order mark are accepted. Big files of the single-turn
formats are parsed by pyarrow's multi-threaded JSON reader (from :data:`STREAM_MIN_BYTES`
on streamed from the file, whose bytes are then never all in memory), their records parsed
from the file's bytes only on demand; a file pyarrow cannot read exactly as ``json`` would takes the plain ``json``
path (so results never depend on the path taken).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tritondiv.pool.formats import detect_format
from tritondiv.pool.model import JsonLines, PoolError
from tritondiv.pool.readers.base import Block, decode_text, parse_lines, read_bytes

__all__ = ["ARROW_MIN_LINES", "STREAM_MIN_BYTES", "read_jsonl"]

#: Files with fewer lines are parsed with ``json`` (as fast, and simpler).
ARROW_MIN_LINES = 1000
#: Plain files from this size on are streamed (never all in memory; their records are read
#: back from the file, memory-mapped, when asked for) rather than read into memory.
STREAM_MIN_BYTES = 1 << 20


def read_jsonl(path: Path, gz: bool, max_records: int | None, mapped: bool = False) -> Block:
    """Read a ``.jsonl`` file; at most ``max_records`` records (the block is then marked
    incomplete when the file has more). ``mapped``: the texts come from a field mapping,
    so any flat record may take the pyarrow path."""
    import pyarrow as pa

    buf = None
    if not gz and path.stat().st_size >= STREAM_MIN_BYTES:
        fast = _arrow_jsonl_file(path, max_records, mapped)
    else:
        buf = pa.py_buffer(read_bytes(path, gz))
        fast = _arrow_jsonl(path, buf, max_records, mapped)
    if fast is not None:
        return fast
    data = read_bytes(path, gz) if buf is None else buf.to_pybytes()
    del buf
    text = decode_text(path, data)
    lines = text.split("\n")
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
    return Block(str(path), "", records=parse_lines(chosen), lines=line_numbers, complete=complete)


def _valid_utf8(data: Any) -> bool:
    """Whether ``data`` (bytes-like) is UTF-8: one zero-copy cast, no Python str."""
    import pyarrow as pa

    buf = data if isinstance(data, pa.Buffer) else pa.py_buffer(data)
    offsets = pa.py_buffer(np.array([0, buf.size], dtype=np.int64))
    try:
        pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, buf]).cast(pa.large_string())
    except pa.ArrowInvalid:
        return False
    return True


def _scan_file(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, int] | None:
    """Stream a file in steps (cut at line ends): (line starts, line ends, first byte of
    each line or -1 when empty, size); None when it is not UTF-8 or starts with a BOM."""
    starts: list[np.ndarray] = []
    firsts: list[np.ndarray] = []
    size = 0
    try:
        for pos, part in _line_steps(path):
            if not _valid_utf8(part):
                return None
            u8 = np.frombuffer(part, dtype=np.uint8)
            local = np.concatenate([[0], np.flatnonzero(u8 == 10) + 1]).astype(np.int64)
            local = local[local < u8.size]
            starts.append(local + pos)
            firsts.append(u8[local].astype(np.int16))
            size = pos + len(part)
    except NotStreamable:
        return None  # a byte order mark: the in-memory path strips it
    s = np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64)
    f = np.concatenate(firsts) if firsts else np.zeros(0, dtype=np.int16)
    if not s.size or size == 0 or _ends_with_newline(path, size):
        s = np.concatenate([s, [size]]).astype(np.int64)  # the empty line after the last "\n"
        f = np.concatenate([f, [-1]]).astype(np.int16)
    e = np.concatenate([s[1:] - 1, [size]]).astype(np.int64)
    f[e <= s] = -1
    return s, e, f, size


def _ends_with_newline(path: Path, size: int) -> bool:
    with path.open("rb") as fh:
        fh.seek(size - 1)
        return fh.read(1) == b"\n"


def _kept(first: np.ndarray, line: Any) -> np.ndarray:
    """Lines kept (neither empty nor whitespace, by ``str.isspace``): those that start with
    ``{``; the few others are decoded (``line(i)``) and checked exactly."""
    kept = first == ord("{")
    for i in np.flatnonzero((first >= 0) & ~kept).tolist():
        text = line(i)
        kept[i] = bool(text) and not text.isspace()
    return kept


#: Bytes per block of pyarrow's JSON reader (fewer, bigger blocks parse faster).
_BLOCK_BYTES = 4 << 20


def _read_table(source: Any) -> Any:
    """The table pyarrow reads from ``source()`` (a path or a reader), or None.

    First the streaming reader (its memory is a few blocks beyond the table; the schema is
    the first block's), then — when a later block does not fit that schema — the reader
    that infers the schema over the whole file."""
    import pyarrow as pa
    import pyarrow.json as pj

    options = pj.ReadOptions(block_size=_BLOCK_BYTES)
    errors = (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError)
    if hasattr(pj, "open_json"):
        try:
            reader = pj.open_json(source(), read_options=options)
            return pa.Table.from_batches(list(reader), schema=reader.schema)
        except errors:
            pass
    try:
        return pj.read_json(source(), read_options=options)
    except errors:
        return None


def _flat_first(text: str, mapped: bool) -> list[str] | None:
    """The fields of the first record when it is a flat one pyarrow may read, else None."""
    try:
        first = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None
    if type(first) is not dict:
        return None
    if not mapped and detect_format(first) not in (
        "alpaca",
        "prompt_completion",
        "question_answer",
    ):
        return None
    return list(first)


def _arrow_jsonl_file(path: Path, max_records: int | None, mapped: bool) -> Block | None:
    """:func:`_arrow_jsonl` for a big plain file, streamed: the file's bytes are never all
    in memory; the records are read back from the file when asked for."""

    scanned = _scan_file(path)
    if scanned is None:
        return None
    starts, ends, first, _ = scanned
    with path.open("rb") as fh:

        def line(i: int) -> str:
            fh.seek(int(starts[i]))
            return fh.read(int(ends[i] - starts[i])).decode("utf-8")

        keep = np.flatnonzero(_kept(first, line))
        if keep.size < ARROW_MIN_LINES or (max_records is not None and keep.size > max_records):
            return None
        fields = _flat_first(line(int(keep[0])), mapped)
    if fields is None:
        return None
    table = _read_table(lambda: str(path))
    if table is None or table.num_rows != keep.size:
        return None
    return Block(
        str(path),
        "",
        table=table,
        lines=keep.astype(np.int64) + 1,
        raw_lines=JsonLines(path, starts[keep], ends[keep]),
        first=fields,
    )


#: Bytes per step when newlines are searched (bounds the temporary mask), and per step of
#: :func:`steps` (a few of pyarrow's blocks, parsed by its threads).
_SCAN_STEP = 1 << 22


def _line_ranges(u8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end byte of every line (split on ``"\\n"`` only, as ``str.split``)."""
    parts = [
        np.flatnonzero(u8[a : a + _SCAN_STEP] == 10).astype(np.int64) + a
        for a in range(0, u8.size, _SCAN_STEP)
    ]
    nl = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    starts = np.concatenate([[0], nl + 1]).astype(np.int64)
    ends = np.concatenate([nl, [u8.size]]).astype(np.int64)
    return starts, ends


def _arrow_jsonl(path: Path, buf: Any, max_records: int | None, mapped: bool) -> Block | None:
    """Read a jsonl file of flat records with pyarrow (multi-threaded C++), from its bytes:
    no Python str of the whole file, no list of its lines.

    Returns None — the plain ``json`` path then reads the file, with its exact messages —
    when the file is not one pyarrow reads exactly as ``json`` would: invalid UTF-8, fewer
    than :data:`ARROW_MIN_LINES` lines, more than ``max_records``, a first record of a
    nested format (unless ``mapped``), mixed types, lone surrogates (which pyarrow rejects),
    a row count that differs from the line count, ...
    """
    import pyarrow as pa

    if buf.size >= 3 and buf.slice(0, 3).to_pybytes() == b"\xef\xbb\xbf":
        buf = buf.slice(3)
    if not _valid_utf8(buf):
        return None
    u8 = np.frombuffer(buf, dtype=np.uint8) if buf.size else np.zeros(0, np.uint8)
    starts, ends = _line_ranges(u8)
    first = np.full(starts.size, -1, dtype=np.int16)
    nonempty = ends > starts
    first[nonempty] = u8[starts[nonempty]]
    view = memoryview(buf)
    keep = np.flatnonzero(_kept(first, lambda i: str(view[int(starts[i]) : int(ends[i])], "utf-8")))
    if keep.size < ARROW_MIN_LINES or (max_records is not None and keep.size > max_records):
        return None
    starts, ends = starts[keep], ends[keep]
    fields = _flat_first(str(view[int(starts[0]) : int(ends[0])], "utf-8"), mapped)
    if fields is None:
        return None
    table = _read_table(lambda: pa.BufferReader(buf))
    if table is None or table.num_rows != keep.size:
        return None
    return Block(
        str(path),
        "",
        table=table,
        lines=keep.astype(np.int64) + 1,
        raw_lines=JsonLines(buf, starts, ends),
        first=fields,
    )


# --------------------------------------------------------------------------------------
# steps: a big file read one bounded step at a time (tritondiv.pool.stream)
# --------------------------------------------------------------------------------------


class NotStreamable(Exception):
    """The file is not one :func:`steps` reads exactly as the in-memory path would (a byte
    order mark, invalid UTF-8, no JSON object on its first line): read it in memory."""


def _line_steps(path: Path) -> Iterator[tuple[int, memoryview]]:
    """A file's bytes in steps of about :data:`_SCAN_STEP`, each cut after a ``"\\n"`` (the
    last at the end of the file): ``(file offset, bytes)``; a line longer than a step is read
    on into the next. :class:`NotStreamable` for a byte order mark."""
    pos = 0  # file offset of data[0]
    carry = b""
    with path.open("rb") as fh:
        while True:
            block = fh.read(_SCAN_STEP)
            data = carry + block if carry else block
            if not data:
                return
            if pos == 0 and data.startswith(b"\xef\xbb\xbf"):
                raise NotStreamable("byte order mark")
            cut = data.rfind(b"\n") + 1 if block else len(data)
            if cut == 0:  # a line longer than the step: read on
                carry = data
                continue
            part, carry = memoryview(data)[:cut], data[cut:]
            yield pos, part
            pos += cut


def first_record_fields(path: Path, mapped: bool) -> tuple[list[str], bool] | None:
    """The fields of a file's first record and whether its records are flat ones pyarrow may
    read (single-turn formats, or ``mapped``), read from the head of the file; None when the
    first non-blank line is not a JSON object."""
    with path.open("rb") as fh:
        head = b""
        while True:
            block = fh.read(_SCAN_STEP)
            head += block
            stripped = head.lstrip(b" \t\r\n\f\v")
            if stripped and (b"\n" in stripped or not block):
                break
            if not block:
                return None
    line = stripped.split(b"\n", 1)[0]
    try:
        first = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    if type(first) is not dict:
        return None
    flat = mapped or detect_format(first) in ("alpaca", "prompt_completion", "question_answer")
    return list(first), flat


def _read_step(buf: Any) -> Any:
    """The table pyarrow reads from one step's bytes as one block (one chunk per column,
    the schema inferred over the whole step; measured as fast as smaller blocks on
    threads), or None."""
    import pyarrow as pa
    import pyarrow.json as pj

    errors = (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError)
    try:
        return pj.read_json(
            pa.BufferReader(buf), read_options=pj.ReadOptions(block_size=max(buf.size + 1, 1024))
        )
    except errors:
        return None


def steps(
    path: Path, fields: list[str], flat: bool
) -> Any:  # Iterator[tuple[Block, np.ndarray, np.ndarray]]
    """Read a plain ``.jsonl`` file in steps of about :data:`_SCAN_STEP` bytes cut at line
    ends: yields, per step holding records, its :class:`Block` (a pyarrow table when
    ``flat`` and pyarrow reads the step exactly, else its records parsed with ``json``;
    ``lines`` and ``base`` are the file's) and the byte range of each of its records in the
    file. Only one step's bytes are in memory at a time.

    Raises :class:`NotStreamable` for a byte order mark or invalid UTF-8."""
    import pyarrow as pa

    line0 = 0  # 0-based line number of the step's first line
    base = 0  # records (non-blank lines) before the step
    for pos, part in _line_steps(path):
        buf = pa.py_buffer(part)
        if not _valid_utf8(buf):
            raise NotStreamable("not UTF-8")
        u8 = np.frombuffer(part, dtype=np.uint8)
        starts, ends = _line_ranges(u8)
        if u8.size and u8[-1] == 10:  # no line after the step's last "\n"
            starts, ends = starts[:-1], ends[:-1]
        first = np.full(starts.size, -1, dtype=np.int16)
        nonempty = ends > starts
        first[nonempty] = u8[starts[nonempty]]
        view = memoryview(part)
        keep = np.flatnonzero(
            _kept(
                first,
                lambda i, v=view, s=starts, e=ends: str(v[int(s[i]) : int(e[i])], "utf-8"),
            )
        )
        if keep.size:
            s, e = starts[keep], ends[keep]
            lines = keep.astype(np.int64) + line0 + 1
            table = _read_step(buf) if flat else None
            if table is not None and table.num_rows == keep.size:
                b = Block(
                    str(path),
                    "",
                    table=table,
                    lines=lines,
                    raw_lines=JsonLines(buf, s, e),
                    first=fields,
                    base=base,
                )
            else:
                texts = [
                    str(view[a:z], "utf-8") for a, z in zip(s.tolist(), e.tolist(), strict=True)
                ]
                b = Block(
                    str(path),
                    "",
                    records=parse_lines(texts),
                    lines=lines,
                    first=fields,
                    base=base,
                )
            yield b, s + pos, e + pos
            base += int(keep.size)
        line0 += int(starts.size)
