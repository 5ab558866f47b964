"""``.parquet`` (and ``.parquet.gz``): a table, one record per row."""

from __future__ import annotations

from pathlib import Path

from tritondiv.pool.model import PoolError
from tritondiv.pool.readers.base import Block, decode_dictionaries, read_bytes

__all__ = ["read_parquet"]


def read_parquet(path: Path, gz: bool) -> Block:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if gz:
            table = pq.read_table(pa.BufferReader(read_bytes(path, gz)))
        else:
            table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise PoolError(
            f"is not a readable parquet file ({exc})", path=path, hint="Check the file"
        ) from None
    if table.num_rows == 0:
        raise PoolError("holds no rows", path=path, hint="Pass a file with at least one record")
    return Block(str(path), "", table=decode_dictionaries(table).combine_chunks())
