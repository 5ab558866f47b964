"""Reading pools: :func:`load_pool` reads instruction/response samples into a :class:`Pool`.

A *pool* is the set of samples datasets are selected from. :func:`load_pool` reads one from

* a file: ``.jsonl`` (one JSON object per line), ``.json`` (a JSON list of objects) or
  ``.parquet``, each optionally gzip-compressed (``.jsonl.gz``, ``.json.gz``, ``.parquet.gz``);
* a directory: every such file below it (recursively, hidden entries skipped), in sorted
  path order, plus any dataset saved with ``datasets``' ``save_to_disk`` found there; a
  folder or file reached twice through links is read once (:mod:`.readers`);
* a dataset saved with ``datasets.Dataset.save_to_disk`` (a folder holding
  ``dataset_info.json`` and ``state.json``) or ``DatasetDict.save_to_disk`` (a folder holding
  ``dataset_dict.json``; splits are read in sorted name order, empty splits are skipped and
  listed in :attr:`Pool.skipped` with the position ``"split"``);
* a list of any of those, in the order given;
* an in-memory table: a ``datasets.Dataset``, a ``datasets.DatasetDict`` with ``split=``
  (splits are never merged silently: without ``split=`` it is an error naming them), a
  pandas or polars ``DataFrame`` (categories accepted), a ``pyarrow.Table`` or
  ``RecordBatch`` — all read through the pyarrow fast path, with fallback ids
  ``dataset:<i>``, ``<split>:<i>``, ``dataframe:<i>``, ``table:<i>`` —, or a list of dicts
  (records, read one by one; fallback ids ``records:<i>``);
* nothing (``None``): the embedded default pool (:func:`default_pool`).

Field mapping: ``instruction=`` (one field, or several joined with ``"\n"`` as alpaca's
instruction + input, empty later ones skipped), ``response=`` and ``id=`` name the fields
to read instead of a format's (the CLI's ``--instruction-field``, ``--response-field``,
``--id-field``); see :class:`~tritondiv.pool.formats.FieldMap`. A named field that does not
exist is a :class:`PoolError` listing the fields that do.

Storage: the columns of a :class:`Pool` are :class:`TextColumn` s, read-only sequences of
str over pyarrow ``large_string`` arrays that share the buffers pyarrow read (no copy of
the texts); :attr:`Pool.fingerprint` is computed from those buffers and is the same for the
same ids and texts whatever the input type.

Record formats (:data:`FORMATS`) are detected per file from the fields of the file's first
record, per record with ``format="mixed"``, or forced with ``format=``; the record rule
(which fields make the instruction and the response, how conversations are joined) is
:func:`record_texts`, documented in :mod:`tritondiv.pool.formats`.

Bad records — an invalid JSON line, a record that is not an object, a missing, null,
non-string or (after stripping whitespace) empty instruction or response, a conversation
without an assistant reply, an unknown role, a text longer than ``max_text_chars``, a text
or id that cannot be written as UTF-8 (a lone surrogate) — raise :class:`PoolError` naming
the file, the line (``.jsonl``) or record index (0-based, for ``.json``, parquet and
``save_to_disk`` datasets) and the field. With ``skip_bad=True`` they are skipped instead,
and every skipped record is listed in :attr:`Pool.skipped` with its reason: nothing is ever
dropped silently.

Sample ids: the record's ``id`` field (as ``str``) when present and not null, else
``"<file>:<index>"`` where ``<file>`` is the path relative to the directory given (the file
name for a single file) and ``<index>`` the 0-based record index in that file. An id seen
before in the pool gets the suffix ``#2``, ``#3``, ... so that ids are unique (the record
itself keeps its original ``id``).

Speed: parquet and ``save_to_disk`` tables are checked and joined with pyarrow compute (no
per-record Python; records become dicts only when :attr:`Pool.records` is read;
dictionary-encoded columns are decoded first). Big plain ``.jsonl`` files (from
:data:`~tritondiv.pool.readers.jsonl.STREAM_MIN_BYTES`, without ``limit=``) are read in
bounded steps (:mod:`tritondiv.pool.stream`): each step is parsed by pyarrow's JSON reader
(or, for the steps and formats it cannot read exactly as ``json`` would, by ``json``), checked,
and spilled to an Arrow file in the pool cache (``$TRITONDIV_CACHE/pools``), which is then
memory-mapped: the pool's texts are views of that file, and a second load of the unchanged
file maps it again (``cache=False``: nothing is written, the columns stay in memory). The
records are read back from the ``.jsonl`` file on demand. Results never depend on the path
taken.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tritondiv.pool.extract import Texts, block_texts
from tritondiv.pool.formats import FORMATS, FieldMap, detect_format, record_texts
from tritondiv.pool.model import (
    Pool,
    PoolError,
    RecordStore,
    SkippedRecord,
    TextColumn,
    summarize_skipped,
    unique_ids,
)
from tritondiv.pool.readers import Block, expand, in_memory_kind, read, read_in_memory
from tritondiv.pool.readers.base import split_suffix
from tritondiv.pool.sharegpt import default_pool
from tritondiv.pool.stream import Part, block_part, load_streamed

__all__ = [
    "DEFAULT_MAX_TEXT_CHARS",
    "FORMATS",
    "Pool",
    "PoolError",
    "SkippedRecord",
    "TextColumn",
    "default_pool",
    "detect_format",
    "load_pool",
    "record_texts",
    "summarize_skipped",
]

#: ``load_pool``'s default bound on one instruction or response, in characters.
DEFAULT_MAX_TEXT_CHARS = 1_000_000


def _column(chunks: list[list[Any]]) -> Any:
    import pyarrow as pa

    return pa.chunked_array([c for part in chunks for c in part], pa.large_string())


def _unique_ids(ids: Any, known: bool = False) -> Any:
    """The id rule (:func:`unique_ids`) on a pyarrow column: untouched when unique."""
    import pyarrow.compute as pc

    if known or not len(ids) or len(pc.unique(ids)) == len(ids):
        return ids
    return unique_ids(ids.to_pylist())


def _assemble(parts: list[Part], extra_skipped: Sequence[SkippedRecord] = ()) -> Pool:
    """The pool of the parts, in order."""
    segments = []
    index_parts = []
    skipped: list[SkippedRecord] = []
    offset = 0
    for part in parts:
        skipped.extend(part.skipped)
        segments.append(part.segment)
        index_parts.append(part.index + offset)
        offset += len(part.segment)
    index = np.concatenate(index_parts) if index_parts else np.zeros(0, dtype=np.int64)
    skipped.extend(extra_skipped)
    known = len(parts) == 1 and parts[0].unique is True
    return Pool(
        _unique_ids(_column([p.ids for p in parts]), known),
        _column([p.instruction for p in parts]),
        _column([p.response for p in parts]),
        _column([p.source for p in parts]),
        RecordStore(segments, index),
        skipped,
    )


def _build_pool(
    blocks: list[tuple[Block, Texts]],
    skip_bad: bool,
    limit: int | None,
    extra_skipped: Sequence[SkippedRecord] = (),
) -> Pool:
    parts = []
    kept = 0
    for block, texts in blocks:
        part = block_part(block, texts, skip_bad, None if limit is None else limit - kept)
        kept += part.kept
        parts.append(part)
    return _assemble(parts, extra_skipped)


def _check_count(name: str, value: Any, minimum: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer or None, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum} (or None), got {value!r}")


def _field(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name}= must be a field name (str) or None, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{name}= must be a non-empty field name")
    return value


def field_map(instruction: Any = None, response: Any = None, id: Any = None) -> FieldMap | None:
    """The :class:`~tritondiv.pool.formats.FieldMap` of ``load_pool``'s mapping keywords
    (``None`` when none is given), checked: names are non-empty strings; ``instruction``
    may also be a list of them (or one comma-separated string)."""
    if isinstance(instruction, str):
        fields: tuple[str, ...] | None = tuple(f.strip() for f in instruction.split(","))
    elif instruction is None:
        fields = None
    elif isinstance(instruction, Sequence) and not isinstance(instruction, bytes):
        fields = tuple(instruction)
        if not fields:
            raise ValueError("instruction= must name at least one field")
    else:
        raise TypeError(
            "instruction= must be a field name, a list of field names or None, "
            f"got {type(instruction).__name__}"
        )
    if fields is not None:
        for f in fields:
            _field("instruction", f)
        if len(set(fields)) != len(fields):
            raise ValueError(f"instruction= names a field twice: {list(fields)!r}")
    fmap = FieldMap(fields, _field("response", response), _field("id", id))
    return fmap if fmap != FieldMap() else None


def _in_memory(source: Any) -> str | None:
    kind = in_memory_kind(source)
    if kind is None and isinstance(source, list) and source:
        if any(isinstance(r, dict) for r in source):
            bad = next(i for i, r in enumerate(source) if not isinstance(r, dict))
            raise TypeError(
                f"a list source must hold only records (dicts) or only paths; item {bad} is "
                f"{type(source[bad]).__name__}"
            )
    return kind


def load_pool(
    source: Any = None,
    *,
    format: str = "auto",
    first_turn_only: bool = False,
    skip_bad: bool = False,
    limit: int | None = None,
    allow_empty: bool = False,
    max_text_chars: int | None = DEFAULT_MAX_TEXT_CHARS,
    instruction: str | Sequence[str] | None = None,
    response: str | None = None,
    id: str | None = None,
    split: str | None = None,
    cache: bool = True,
) -> Pool:
    """Read a pool of instruction/response samples.

    Parameters
    ----------
    source : path, list of paths, table, list of dicts, or None
        A pool file, a directory of pool files, a ``datasets`` ``save_to_disk`` folder, or
        a list of those (read in order); or an in-memory table: a ``datasets.Dataset``, a
        ``datasets.DatasetDict`` (with ``split=``), a pandas or polars ``DataFrame``, a
        ``pyarrow.Table``, or a list of dicts (records). ``None`` loads the embedded
        default pool (ShareGPT, see :func:`default_pool`; it always skips its
        conversations that give no sample, listing them in :attr:`Pool.skipped`). See the
        module docstring for the file types and record formats.
    format : str
        ``"auto"`` (detect per file from its first record), ``"mixed"`` (detect per
        record, for files that mix formats; rows of a table drop their null fields before
        detection), or one of ``"alpaca"``, ``"prompt_completion"``, ``"question_answer"``,
        ``"sharegpt"``, ``"messages"``, applied to every record.
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
    max_text_chars : int or None
        The longest instruction or response (in characters, after joining) a record may
        have; a longer one is a bad record (an outsized text makes every later step slow
        and memory-hungry). Default :data:`DEFAULT_MAX_TEXT_CHARS`; ``None`` disables the
        bound. The default pool is not bounded by it (its texts are known).
    instruction : str or list of str, optional
        The field(s) the instruction is made of, instead of a format's: the first must be
        a non-empty string; each later one, when a non-empty string, is appended after a
        ``"\n"`` (alpaca's ``instruction`` + ``input`` is ``["instruction", "input"]``); a
        later field may be null. One string may list fields comma-separated.
    response : str, optional
        The field the response is taken from. With ``instruction=`` or ``response=`` the
        other one defaults to alpaca's (``instruction`` + optional ``input``; ``output``,
        or ``response`` when the first record has no ``output``), and ``format`` must be
        ``"auto"``. A named field absent from a file's first record (a table's columns)
        is a :class:`PoolError` listing the fields there are.
    id : str, optional
        The field sample ids are taken from (default ``id``; see the module docstring).
    split : str, optional
        The split of a ``datasets.DatasetDict`` source to read; required for one (splits
        are never merged silently) and refused for other sources.
    cache : bool, default True
        Read and write the pool cache of big ``.jsonl`` files (:mod:`tritondiv.pool.stream`:
        their checked columns are spilled to an Arrow file in ``$TRITONDIV_CACHE/pools``
        and memory-mapped; a second load of an unchanged file maps it again). ``False``
        writes nothing; the columns then stay in memory.

    Returns
    -------
    Pool

    Raises
    ------
    PoolError
        A missing, empty, unreadable or broken-link file, an empty table or split, a
        ``DatasetDict`` without ``split=`` (the message names its splits), a mapped field
        that does not exist, an unknown format, or (without ``skip_bad``) a bad record;
        the message names the file, line/record and field.
    TypeError
        A source of an unsupported type, or mapping keywords that are not field names.
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {format!r}")
    fmap = field_map(instruction, response, id)
    if fmap is not None and fmap.maps_texts and format not in ("auto", "mixed"):
        raise ValueError(
            f"instruction=/response= replace the record format; format={format!r} does not "
            "apply with them (leave format='auto')"
        )
    if split is not None and not isinstance(split, str):
        raise TypeError(f"split= must be a split name (str) or None, got {type(split).__name__}")
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int | np.integer) or limit < 0
    ):
        raise ValueError(f"limit must be a non-negative integer or None, got {limit!r}")
    _check_count("max_text_chars", max_text_chars, 1)
    if source is None:
        if format not in ("auto", "mixed", "sharegpt"):
            raise ValueError(
                f"the default pool is in ShareGPT format; format={format!r} does not apply"
            )
        if fmap is not None:
            raise ValueError("instruction=/response=/id= do not apply to the default pool")
        return default_pool(limit=limit, first_turn_only=first_turn_only)
    kind = _in_memory(source)
    if kind is not None:
        block = read_in_memory(source, kind, split)
        _, texts = block_texts(block, format, first_turn_only, allow_empty, max_text_chars, fmap)
        return _build_pool([(block, texts)], skip_bad, limit)
    if not isinstance(cache, bool):
        raise TypeError(f"cache= must be True or False, got {type(cache).__name__}")
    if split is not None:
        raise ValueError(
            f"split={split!r} applies to a datasets.DatasetDict source only "
            f"(got {type(source).__name__})"
        )
    if not isinstance(source, str | os.PathLike | list | tuple):
        raise TypeError(
            "source must be a path, a list of paths, a datasets Dataset/DatasetDict, a pandas "
            f"or polars DataFrame, a pyarrow Table, a list of dicts or None; got "
            f"{type(source).__name__}"
        )
    sources = [source] if isinstance(source, str | os.PathLike) else list(source)
    bad = next((s for s in sources if not isinstance(s, str | os.PathLike)), None)
    if bad is not None:
        raise TypeError(
            f"a list source must hold paths (str or os.PathLike); got {type(bad).__name__}"
        )
    if not sources:
        raise PoolError(
            "no pool sources given", hint="Pass a file, a directory, or None for the default pool"
        )
    files = [f for s in sources for f in expand(s)]
    parts: list[Part] = []
    notes: list[SkippedRecord] = []
    kept = 0
    for path, rel in files:
        if limit is not None and kept >= limit:
            break
        if limit is None and _streams(path):
            part = load_streamed(
                path,
                rel,
                format=format,
                first_turn_only=first_turn_only,
                skip_bad=skip_bad,
                allow_empty=allow_empty,
                max_text_chars=max_text_chars,
                fmap=fmap,
                cache=cache,
            )
            if part is not None:
                parts.append(part)
                continue
        want = None if limit is None else limit - kept
        cap = None if want is None else max(2 * want, 16)
        while True:
            read_blocks, empty = read(path, rel, cap, fmap is not None and fmap.maps_texts)
            parsed = [
                (b, block_texts(b, format, first_turn_only, allow_empty, max_text_chars, fmap)[1])
                for b in read_blocks
            ]
            good = sum(len(b) - len(t.problems) for b, t in parsed)
            if want is None or good >= want or all(b.complete for b, _ in parsed):
                break
            assert cap is not None
            cap = 4 * cap  # bad records ate into the window: read more
        notes.extend(empty)
        for b, t in parsed:
            part = block_part(b, t, skip_bad, None if limit is None else limit - kept)
            parts.append(part)
            kept += part.kept
    return _assemble(parts, notes)


def _streams(path: Path) -> bool:
    """Whether a file is read in steps (:mod:`tritondiv.pool.stream`): a plain ``.jsonl``
    of at least :data:`~tritondiv.pool.readers.jsonl.STREAM_MIN_BYTES`."""
    from tritondiv.pool.readers import jsonl

    if path.is_dir() or split_suffix(path) != (".jsonl", False):
        return False
    try:
        return path.stat().st_size >= max(jsonl.STREAM_MIN_BYTES, 1)
    except OSError:
        return False
