"""``.jsonl`` (and ``.jsonl.gz``): one JSON object per line.

Blank lines are skipped; lines split on ``"\\n"`` only (JSON strings may hold raw U+2028 and
friends); ``\\r\\n`` and a UTF-8 byte order mark are accepted. Big files of the single-turn
formats are parsed by pyarrow's multi-threaded JSON reader, their records parsed from the
kept lines only on demand; a file pyarrow cannot read exactly as ``json`` would takes the
plain ``json`` path (so results never depend on the path taken).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from tritondiv.pool.formats import detect_format
from tritondiv.pool.model import PoolError
from tritondiv.pool.readers.base import Block, decode_text, parse_lines, read_bytes

__all__ = ["ARROW_MIN_LINES", "read_jsonl"]

#: Files with fewer lines are parsed with ``json`` (as fast, and simpler).
ARROW_MIN_LINES = 1000


def read_jsonl(path: Path, gz: bool, max_records: int | None, mapped: bool = False) -> Block:
    """Read a ``.jsonl`` file; at most ``max_records`` records (the block is then marked
    incomplete when the file has more). ``mapped``: the texts come from a field mapping,
    so any flat record may take the pyarrow path."""
    data = read_bytes(path, gz)
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
    if complete and len(chosen) >= ARROW_MIN_LINES:
        fast = _arrow_jsonl(data[3:] if data.startswith(b"\xef\xbb\xbf") else data, chosen, mapped)
        if fast is not None:
            table, first = fast
            return Block(
                str(path), "", table=table, lines=line_numbers, raw_lines=chosen, first=first
            )
    return Block(str(path), "", records=parse_lines(chosen), lines=line_numbers, complete=complete)


def _arrow_jsonl(
    data: bytes, chosen: list[str], mapped: bool = False
) -> tuple[Any, list[str]] | None:
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
    if type(first) is not dict:
        return None
    if not mapped and detect_format(first) not in (
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
