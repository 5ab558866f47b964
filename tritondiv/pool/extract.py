"""A block of records -> its instruction/response columns and its bad records.

JSON-parsed records go through the record rule (:func:`tritondiv.pool.formats.texts_of`)
one by one. Tables of the single-turn formats (parquet, ``save_to_disk``, big ``.jsonl``
files read by pyarrow) are checked and joined with pyarrow compute, giving exactly what the
record rule gives (the tests hold them to it).

Then, for every block: texts longer than ``max_text_chars`` and texts or ids that cannot be
written as UTF-8 (lone surrogates, which ``json`` reads without complaint) are bad records,
found with one vectorised pass per column and a per-record scan only when it fails.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

from tritondiv.pool.formats import (
    CONVERSATION_FORMATS,
    FieldMap,
    Problem,
    alpaca_response_field,
    detect_format,
    format_fields,
    json_type,
    mapped_texts,
    texts_of,
    unknown_format,
)
from tritondiv.pool.model import PoolError, arrow_numpy
from tritondiv.pool.readers.base import BadJson, Block

__all__ = ["Texts", "block_texts"]


class Texts:
    """instruction/response/ids of one block (lists or pyarrow arrays) plus per-record
    problems (index -> (field, reason)) and, per record, the fields holding each text."""

    def __init__(self, n: int) -> None:
        self.instruction: Any = [None] * n
        self.response: Any = [None] * n
        self.ids: Any = None
        self.problems: dict[int, tuple[str | None, str]] = {}
        self.fields: Callable[[int], tuple[str, str]] = lambda i: ("instruction", "response")

    def flag(self, i: int, field: str | None, reason: str) -> None:
        self.problems.setdefault(i, (field, reason))


def _not_object(r: Any) -> str:
    return r.reason if isinstance(r, BadJson) else f"is a JSON {json_type(r)}, expected an object"


# --------------------------------------------------------------------------------------
# records: the record rule, one by one
# --------------------------------------------------------------------------------------


def _texts_records(
    records: list[Any], fmt: str, first_only: bool, allow_empty: bool, response_field: str | None
) -> Texts:
    texts = Texts(len(records))
    ins, res = texts.instruction, texts.response
    for i, r in enumerate(records):
        if type(r) is not dict:
            texts.flag(i, None, _not_object(r))
            continue
        try:
            ins[i], res[i] = texts_of(r, fmt, first_only, allow_empty, response_field)
        except Problem as p:
            texts.flag(i, p.field, p.reason)
    fields = format_fields(fmt, response_field or "output")
    texts.fields = lambda i: fields
    return texts


def _texts_mixed(block: Block, first_only: bool, allow_empty: bool) -> Texts:
    """``format="mixed"``: each record's own format. Rows of a table drop their null
    fields first (a table gives every row every column)."""
    if block.records is None and block.raw_lines is None:
        block.records = block.table.to_pylist()
        block.table = None
        strip = True
    else:
        block.to_records()
        strip = False
    records = block.records
    assert records is not None
    texts = Texts(len(records))
    formats: list[tuple[str, str]] = [("instruction", "response")] * len(records)
    for i, r in enumerate(records):
        if type(r) is not dict:
            texts.flag(i, None, _not_object(r))
            continue
        if strip:
            r = {k: v for k, v in r.items() if v is not None}
        fmt = detect_format(r)
        if fmt is None:
            texts.flag(i, None, unknown_format(r)[0])
            continue
        formats[i] = format_fields(fmt, alpaca_response_field(r))
        try:
            texts.instruction[i], texts.response[i] = texts_of(r, fmt, first_only, allow_empty)
        except Problem as p:
            texts.flag(i, p.field, p.reason)
    texts.fields = formats.__getitem__
    return texts


# --------------------------------------------------------------------------------------
# tables: pyarrow compute
# --------------------------------------------------------------------------------------


def _arrow_check_text(
    texts: Texts, table: Any, field: str, allow_empty: bool, nullable: bool = False
) -> Any:
    """Vectorized checks of one text column of a table; returns it (a pyarrow array) or None
    when it is absent or not text. Flags nulls, non-string types and (unless
    ``allow_empty``) empty or whitespace-only texts, with the same reasons as the record
    rule."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = table.num_rows
    if field not in table.column_names:
        if not nullable:
            for i in range(n):
                texts.flag(i, field, "is missing")
        return None
    col = table.column(field)  # chunked: no copy of the texts
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        valid = np.flatnonzero(arrow_numpy(col.is_valid()))
        for i in valid.tolist():
            v = col[i].as_py()
            want = "a string or null" if nullable else "a string"
            texts.flag(i, field, f"is a JSON {json_type(v)}, expected {want}")
        if not nullable:
            for i in np.flatnonzero(arrow_numpy(col.is_null())).tolist():
                texts.flag(i, field, "is a JSON null, expected a string")
        return None
    if not nullable and col.null_count:
        for i in np.flatnonzero(arrow_numpy(col.is_null())).tolist():
            texts.flag(i, field, "is a JSON null, expected a string")
    if not allow_empty and not nullable:
        # A text holding a printable ASCII character is not empty; the others (empty,
        # whitespace, or no ASCII at all) are checked with Python's own str.isspace.
        # (most texts start with one: only the others are searched)
        maybe = np.flatnonzero(~_starts_printable(col))
        if maybe.size:
            rest = col.take(pa.array(maybe))
            has_ascii = arrow_numpy(pc.fill_null(pc.match_substring_regex(rest, "[!-~]"), True))
            maybe = maybe[~has_ascii & arrow_numpy(rest.is_valid())]
        if maybe.size:
            values = col.take(pa.array(maybe)).to_pylist()
            for i, v in zip(maybe.tolist(), values, strict=True):
                if not v or v.isspace():
                    texts.flag(i, field, "is empty")
    return col


def _starts_printable(col: Any) -> np.ndarray:
    """Per text of a string column: whether its first byte is printable ASCII (``!``-``~``);
    nulls count as printable. Read from the offsets and data buffers, no copy."""
    import pyarrow as pa

    out = []
    for chunk in col.chunks if isinstance(col, pa.ChunkedArray) else [col]:
        n = len(chunk)
        if not n:
            continue
        width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        bufs = chunk.buffers()
        offsets = np.frombuffer(bufs[1], dtype=width)[chunk.offset : chunk.offset + n + 1]
        data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0)
        starts = offsets[:-1].astype(np.int64)
        nonempty = offsets[1:] > offsets[:-1]
        first = np.zeros(n, dtype=np.uint8)
        first[nonempty] = data[starts[nonempty]]
        ok = (first >= 0x21) & (first <= 0x7E)
        if chunk.null_count:
            ok |= ~arrow_numpy(chunk.is_valid())
        out.append(ok)
    return np.concatenate(out) if out else np.zeros(0, dtype=bool)


def _join(a: Any, b: Any) -> Any:
    """``a + "\\n" + b`` element-wise, for string and large_string columns alike."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if a.type != b.type:
        a, b = a.cast(pa.large_string()), b.cast(pa.large_string())
    return pc.binary_join_element_wise(a, b, pa.scalar("\n", a.type))


def _texts_table(block: Block, fmt: str, allow_empty: bool) -> Texts:
    """Single-turn formats of a table: checks and the alpaca join in pyarrow compute."""
    import pyarrow.compute as pc

    table = block.table
    texts = Texts(0)
    if fmt == "alpaca":
        resp_field = alpaca_response_field(block.first_fields())
        inst = _arrow_check_text(texts, table, "instruction", allow_empty)
        inp = _arrow_check_text(texts, table, "input", True, nullable=True)
        if inst is not None and inp is not None:
            joined = _join(inst, inp)
            use = pc.fill_null(pc.greater(pc.binary_length(inp), 0), False)
            inst = pc.if_else(use, joined, inst.cast(joined.type))
    else:
        inst_field, resp_field = format_fields(fmt)
        inst = _arrow_check_text(texts, table, inst_field, allow_empty)
    resp = _arrow_check_text(texts, table, resp_field, allow_empty)
    n = table.num_rows
    texts.instruction = inst if inst is not None else [None] * n
    texts.response = resp if resp is not None else [None] * n
    fields = format_fields(fmt, resp_field)
    texts.fields = lambda i: fields
    return texts


# --------------------------------------------------------------------------------------
# a field mapping (load_pool(instruction=, response=))
# --------------------------------------------------------------------------------------


def _texts_mapped_records(
    records: list[Any], instruction: tuple[str, ...], response: str, allow_empty: bool
) -> Texts:
    texts = Texts(len(records))
    ins, res = texts.instruction, texts.response
    for i, r in enumerate(records):
        if type(r) is not dict:
            texts.flag(i, None, _not_object(r))
            continue
        try:
            ins[i], res[i] = mapped_texts(r, instruction, response, allow_empty)
        except Problem as p:
            texts.flag(i, p.field, p.reason)
    fields = (instruction[0], response)
    texts.fields = lambda i: fields
    return texts


def _texts_mapped_table(
    block: Block, instruction: tuple[str, ...], response: str, allow_empty: bool
) -> Texts:
    """The mapped record rule in pyarrow compute (as :func:`_texts_table` for alpaca)."""
    import pyarrow.compute as pc

    table = block.table
    texts = Texts(0)
    inst = _arrow_check_text(texts, table, instruction[0], allow_empty)
    for name in instruction[1:]:
        extra = _arrow_check_text(texts, table, name, True, nullable=True)
        if inst is not None and extra is not None:
            use = pc.fill_null(pc.greater(pc.binary_length(extra), 0), False)
            joined = _join(inst, extra)
            inst = pc.if_else(use, joined, inst.cast(joined.type))
    resp = _arrow_check_text(texts, table, response, allow_empty)
    n = table.num_rows
    texts.instruction = inst if inst is not None else [None] * n
    texts.response = resp if resp is not None else [None] * n
    fields = (instruction[0], response)
    texts.fields = lambda i: fields
    return texts


def _block_mapped(block: Block, fmap: FieldMap, allow_empty: bool) -> tuple[str, Texts]:
    instruction, response = fmap.resolve(block.first_fields(), block.path)
    if block.table is not None:
        texts = _texts_mapped_table(block, instruction, response, allow_empty)
        if block.raw_lines is not None and (texts.problems or not block.plain_ids(fmap.id or "id")):
            block.to_records()  # exact reasons and ids from the json path, as below
    if block.table is None:
        assert block.records is not None
        texts = _texts_mapped_records(block.records, instruction, response, allow_empty)
    return "mapped", texts


# --------------------------------------------------------------------------------------
# size and encodability, vectorised
# --------------------------------------------------------------------------------------


def _check_size(texts: Texts, col: Any, which: int, max_chars: int) -> None:
    if isinstance(col, list):
        lengths = np.fromiter((len(s) if type(s) is str else 0 for s in col), np.int64, len(col))
    else:
        import pyarrow.compute as pc

        # a text has at most as many characters as bytes: count those of the long ones only
        nbytes = arrow_numpy(pc.fill_null(pc.binary_length(col), 0))
        lengths = nbytes
        if (nbytes > max_chars).any():
            lengths = arrow_numpy(pc.fill_null(pc.utf8_length(col), 0))
    for i in np.flatnonzero(lengths > max_chars).tolist():
        texts.flag(
            i,
            texts.fields(i)[which],
            f"is {int(lengths[i]):,} characters long, over max_text_chars={max_chars:,}",
        )


def _surrogate(text: str) -> str | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (
            f"holds a lone surrogate ({text[exc.start]!r} at character {exc.start}), "
            "which cannot be written as UTF-8"
        )
    return None


def _check_encodable(texts: Texts, col: Any, field: Callable[[int], str]) -> None:
    if isinstance(col, list):
        try:
            "".join([s for s in col if type(s) is str]).encode("utf-8")
            return
        except UnicodeEncodeError:
            pass
        for i, s in enumerate(col):
            if type(s) is str and (reason := _surrogate(s)) is not None:
                texts.flag(i, field(i), reason)
        return
    import pyarrow as pa

    try:  # Arrow strings are UTF-8 by contract; a parquet file may still break it
        col.validate(full=True)
    except pa.ArrowInvalid:
        for i in range(len(col)):
            try:
                col[i].as_py()
            except UnicodeDecodeError:
                texts.flag(i, field(i), "is not valid UTF-8")


def _locate(record: Any, field: str) -> str:
    """The raw field of a JSON record that holds the unencodable part of a text made from
    ``field`` (alpaca's instruction joins ``input``; a conversation names its turn)."""
    if type(record) is not dict:
        return field
    value = record.get(field)
    if field == "instruction" and type(value) is str and _surrogate(value) is None:
        return "input"
    if isinstance(value, list):
        text_key = "content" if field == "messages" else "value"
        for j, turn in enumerate(value):
            text = turn.get(text_key) if isinstance(turn, dict) else None
            if text is not None and _surrogate(json.dumps(text, ensure_ascii=False)) is not None:
                return f"{field}[{j}].{text_key}"
    return field


def _check_limits(block: Block, texts: Texts, max_text_chars: int | None) -> None:
    records = block.records
    # pyarrow's JSON reader, reading valid UTF-8 (checked), gives valid UTF-8 texts
    encoded = block.raw_lines is not None
    for which, col in enumerate((texts.instruction, texts.response)):
        if max_text_chars is not None:
            _check_size(texts, col, which, max_text_chars)
        if encoded and not isinstance(col, list):
            continue

        def field(i: int, which: int = which) -> str:
            name = texts.fields(i)[which]
            return name if records is None else _locate(records[i], name)

        _check_encodable(texts, col, field)
    if not (encoded and not isinstance(texts.ids, list)):
        _check_encodable(texts, texts.ids, lambda i: "id")


# --------------------------------------------------------------------------------------
# one block
# --------------------------------------------------------------------------------------


def block_texts(
    block: Block,
    fmt: str,
    first_only: bool,
    allow_empty: bool = False,
    max_text_chars: int | None = None,
    fmap: FieldMap | None = None,
) -> tuple[str, Texts]:
    """The format of a block (``fmt``, or detected from its first record for ``"auto"``;
    ``"mapped"`` with a field mapping) and its texts, ids and bad records."""
    id_field = "id" if fmap is None or fmap.id is None else fmap.id
    if fmap is not None and fmap.maps_texts:
        fmt, texts = _block_mapped(block, fmap, allow_empty)
    elif fmap is not None and fmap.id is not None and fmt != "mixed":
        # id= alone: the mapping's check that the field exists, then the usual rule
        fields = block.first_fields()
        if fmap.id not in fields:
            FieldMap(id=fmap.id).resolve(fields, block.path)
        fmt, texts = _block_format(block, fmt, first_only, allow_empty, id_field)
    elif fmt == "mixed":
        texts = _texts_mixed(block, first_only, allow_empty)
    else:
        fmt, texts = _block_format(block, fmt, first_only, allow_empty, id_field)
    texts.ids = block.ids(id_field)
    _check_limits(block, texts, max_text_chars)
    return fmt, texts


def _block_format(
    block: Block, fmt: str, first_only: bool, allow_empty: bool, id_field: str
) -> tuple[str, Texts]:
    if fmt == "auto":
        fields = block.first_fields()
        detected = detect_format(fields)
        if detected is None:
            reason, hint = unknown_format(fields)
            raise PoolError(reason, path=block.path, hint=hint, **block.where(block.first_index()))
        fmt = detected
    if fmt in CONVERSATION_FORMATS:
        block.to_records()
    if fmt in CONVERSATION_FORMATS and block.table is not None:
        key = format_fields(fmt)[0]  # a table of conversations: its one column counts
        turns = block.table.column(key).to_pylist() if key in block.table.column_names else []
        rows = [{key: t} for t in turns] if turns else [{}] * len(block)
        texts = _texts_records(rows, fmt, first_only, allow_empty, None)
    elif block.table is not None:
        texts = _texts_table(block, fmt, allow_empty)
        if block.raw_lines is not None and (texts.problems or not block.plain_ids(id_field)):
            # The pyarrow fast path only serves clean files: bad records get their exact
            # reasons, and ids their exact str(), from the json path.
            block.to_records()
    if block.table is None:
        assert block.records is not None
        response_field = alpaca_response_field(block.first_fields()) if fmt == "alpaca" else None
        texts = _texts_records(block.records, fmt, first_only, allow_empty, response_field)
    return fmt, texts
