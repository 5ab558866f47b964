"""``.jsonl`` (and ``.jsonl.gz``): one JSON object per line.

Blank lines are skipped; lines split on ``"\\n"`` only (JSON strings may hold raw U+2028 and
friends); ``\\r\\n`` and a UTF-8 byte order mark are accepted. Big files of the single-turn
formats are parsed by pyarrow's multi-threaded JSON reader straight from the file's bytes
(memory-mapped from :data:`MMAP_MIN_BYTES` on), their records parsed from those bytes only
on demand; a file pyarrow cannot read exactly as ``json`` would takes the plain ``json``
path (so results never depend on the path taken).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from tritondiv.pool.formats import detect_format
from tritondiv.pool.model import JsonLines, PoolError
from tritondiv.pool.readers.base import Block, decode_text, parse_lines, read_bytes

__all__ = ["ARROW_MIN_LINES", "MMAP_MIN_BYTES", "read_jsonl"]

#: Files with fewer lines are parsed with ``json`` (as fast, and simpler).
ARROW_MIN_LINES = 1000
#: Plain files from this size on are memory-mapped rather than read into memory.
MMAP_MIN_BYTES = 1 << 20


def read_jsonl(path: Path, gz: bool, max_records: int | None, mapped: bool = False) -> Block:
    """Read a ``.jsonl`` file; at most ``max_records`` records (the block is then marked
    incomplete when the file has more). ``mapped``: the texts come from a field mapping,
    so any flat record may take the pyarrow path."""
    import pyarrow as pa

    if gz or path.stat().st_size < MMAP_MIN_BYTES:
        buf = pa.py_buffer(read_bytes(path, gz))
    else:  # memory-mapped: the pages stay the file's (the records are read from them)
        buf = pa.memory_map(str(path)).read_buffer()
    fast = _arrow_jsonl(path, buf, max_records, mapped)
    if fast is not None:
        return fast
    data = buf.to_pybytes()
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


#: Bytes per step when newlines are searched (bounds the temporary mask).
_SCAN_STEP = 1 << 24


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
    import pyarrow.json as pj

    if buf.size >= 3 and buf.slice(0, 3).to_pybytes() == b"\xef\xbb\xbf":
        buf = buf.slice(3)
    try:  # one zero-copy cast checks that the whole file is UTF-8
        offsets = pa.py_buffer(np.array([0, buf.size], dtype=np.int64))
        pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, buf]).cast(pa.large_string())
    except pa.ArrowInvalid:
        return None
    u8 = np.frombuffer(buf, dtype=np.uint8) if buf.size else np.zeros(0, np.uint8)
    starts, ends = _line_ranges(u8)
    # A line is kept when it is neither empty nor whitespace (str.isspace): a line that
    # starts with "{" is kept; the others (few) are decoded and checked exactly.
    nonempty = ends > starts
    opens = np.zeros(starts.size, dtype=bool)
    opens[nonempty] = u8[starts[nonempty]] == ord("{")
    kept = opens.copy()
    view = memoryview(buf)
    for i in np.flatnonzero(nonempty & ~opens).tolist():
        line = str(view[int(starts[i]) : int(ends[i])], "utf-8")
        kept[i] = bool(line) and not line.isspace()
    keep = np.flatnonzero(kept)
    if keep.size < ARROW_MIN_LINES or (max_records is not None and keep.size > max_records):
        return None
    starts, ends = starts[keep], ends[keep]
    try:
        first = json.loads(str(view[int(starts[0]) : int(ends[0])], "utf-8"))
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
    try:
        table = pj.read_json(pa.BufferReader(buf))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.num_rows != keep.size:
        return None
    return Block(
        str(path),
        "",
        table=table,
        lines=keep.astype(np.int64) + 1,
        raw_lines=JsonLines(buf, starts, ends),
        first=list(first),
    )
