"""``.json`` (and ``.json.gz``): one JSON list of records."""

from __future__ import annotations

import json
from pathlib import Path

from tritondiv.pool.formats import json_type
from tritondiv.pool.model import PoolError
from tritondiv.pool.readers.base import Block, decode_text, read_bytes

__all__ = ["read_json"]


def read_json(path: Path, gz: bool) -> Block:
    text = decode_text(path, read_bytes(path, gz))
    if not text.strip():
        raise PoolError("is empty", path=path, hint="Pass a JSON list of records")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PoolError(
            f"is not valid JSON ({exc.msg} at column {exc.colno})",
            path=path,
            line=exc.lineno,
            hint="Fix the file (a .json pool is one JSON list of records; "
            "use .jsonl for one record per line)",
        ) from None
    if not isinstance(value, list):
        raise PoolError(
            f"holds a JSON {json_type(value)}, expected a list of records",
            path=path,
            hint="A .json pool is one JSON list of objects; "
            "for one object per line name the file .jsonl",
        )
    if not value:
        raise PoolError(
            "holds an empty list (no records)",
            path=path,
            hint="Pass a file with at least one record",
        )
    return Block(str(path), "", records=value)
