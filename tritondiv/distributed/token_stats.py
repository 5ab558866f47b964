"""Token statistics of a pool on Ray Data: sharded, exact, in pool order.

The pipeline (each stage a Ray Data ``map_batches`` over blocks, retried on worker loss):

1. **texts** — an in-memory :class:`~tritondiv.Pool` is sliced into ``num_blocks``
   contiguous blocks; pool files are one task each, read with the pool's own record rule
   (:func:`_shard_texts`, the one place that maps records to texts here), then
   repartitioned into ``num_blocks`` blocks when there are fewer files than that (else
   each file streams on as its own block). Every row keeps its key ``(shard, row)``.
2. **tokenize** — :func:`tritondiv.tokens.tokenize` with the tokenizer of the local engine;
   the token ids stay in an Arrow ``large_list<int32>`` column. The tokenized blocks are
   materialized once (the object store holds them) for the two passes below.
3. **count** — per block, :func:`tritondiv.stats.token_counts` (the C++ core) gives
   occurrences and document frequencies per token id; the driver adds them in ``int64``.
   Both are sums over samples, so the totals are exactly the local engine's, bit for bit.
4. **band** — the band bounds are resolved against the pool size, and each block runs the
   core's band incidence against the *global* counts; the driver sorts the rows by their
   key, so the incidence has the local engine's offsets and types, sample for sample.

Distinct-1 comes from the counts; distinct-2 from the union of each block's distinct
bigram keys (exact, as the core's); distinct-3/4 (hashed in the core) are not computed.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tritondiv.distributed._ray import ensure_ray, quiet_remote_args
from tritondiv.incidence import Incidence
from tritondiv.stats import Threshold, TokenStats, resolve_threshold

__all__ = ["RayTokenStats", "token_stats_ray"]

_COMPONENTS = ("instruction", "response")
_LOAD_KEYS = ("format", "first_turn_only", "skip_bad", "allow_empty")
_NAMED = ("smollm2", "minilm")  # packaged tokenizers, loaded by name in every worker


@dataclass(frozen=True)
class RayTokenStats:
    """Exact token statistics of one pool component, computed on a Ray cluster.

    Attributes
    ----------
    component : str
        ``"instruction"`` or ``"response"``.
    n_samples, n_tokens, vocab_size : int
        Samples, tokens, tokenizer vocabulary (with added tokens).
    lo, hi : int
        The band bounds used, in occurrences (resolved against ``n_samples``).
    counts, df : numpy.ndarray
        ``int64[vocab_size]`` occurrences and document frequency of each token id (the
        local ``tritondiv.stats.token_counts``).
    lengths : numpy.ndarray
        ``int64[n_samples]`` tokens per sample, in pool order.
    band : numpy.ndarray
        ``int32[B]`` the mid-band token ids, increasing (type ``t`` is token ``band[t]``).
    incidence : Incidence
        The sample -> mid-band-type incidence in pool order (``labels`` = ``band``).
    distinct : dict of int to float
        Distinct-n over the whole set for each requested n (1 and/or 2).
    num_blocks : int
        Blocks the tokenized pool was held in.
    seconds : dict of str to float
        Wall time of each stage on the driver (``texts_tokenize``, ``count``, ``band``,
        ``gather``).
    """

    component: str
    n_samples: int
    n_tokens: int
    vocab_size: int
    lo: int
    hi: int
    counts: np.ndarray = field(repr=False)
    df: np.ndarray = field(repr=False)
    lengths: np.ndarray = field(repr=False)
    band: np.ndarray = field(repr=False)
    incidence: Incidence = field(repr=False)
    distinct: dict[int, float] = field(default_factory=dict)
    num_blocks: int = 0
    seconds: dict[str, float] = field(default_factory=dict, compare=False)

    def token_stats(self) -> TokenStats:
        """The summary :class:`~tritondiv.stats.TokenStats`.

        Equal, field for field, to ``tritondiv.stats.token_stats(tokens, lo=..., hi=...,
        ns=...)`` of the locally tokenized component, with the same ``ns``.
        """
        from tritondiv._runtime import _core

        counts = self.counts
        used = counts > 0
        n_tokens = self.n_tokens
        h = float(_core.entropy_nats(counts))
        row_types = self.incidence.row_lengths()
        n = self.n_samples
        lengths = self.lengths
        return TokenStats(
            n_samples=n,
            n_tokens=n_tokens,
            vocab_size=self.vocab_size,
            vocab_used=int(used.sum()),
            lo=self.lo,
            hi=self.hi,
            n_below=int((used & (counts < self.lo)).sum()),
            n_mid=int(self.band.size),
            n_above=int((counts > self.hi).sum()),
            mid_tokens=int(counts[self.band].sum()),
            mean_mid_types=float(row_types.mean()) if n else math.nan,
            samples_without_types=int((row_types == 0).sum()),
            distinct=dict(self.distinct),
            entropy_nats=h,
            entropy_bits=h / math.log(2),
            mean_length=float(lengths.mean()) if n else math.nan,
            median_length=float(np.median(lengths)) if n else math.nan,
            max_length=int(lengths.max()) if n else 0,
            incidence=self.incidence,
        )


# ---- the per-block work (runs in Ray workers; module-level so workers import it) ---------


def _shard_texts(path: str, component: str, load_kwargs: dict[str, Any]) -> list[str]:
    """The texts of one pool file under the pool's record rule (swap point for record_texts)."""
    from tritondiv.pool import load_pool

    return load_pool(path, **load_kwargs).component(component).to_pylist()


def _read_shards(batch: dict[str, np.ndarray], component: str, load_kwargs: dict[str, Any]) -> Any:
    import pyarrow as pa

    tables = []
    for shard, path in zip(batch["shard"].tolist(), batch["path"].tolist(), strict=True):
        texts = _shard_texts(str(path), component, load_kwargs)
        tables.append(_text_table(int(shard), 0, texts))
    return pa.concat_tables(tables) if tables else _text_table(0, 0, [])


def _text_table(shard: int, start: int, texts: Sequence[str]) -> Any:
    import pyarrow as pa

    n = len(texts)
    return pa.table(
        {
            "shard": pa.array(np.full(n, shard, dtype=np.int64)),
            "row": pa.array(np.arange(start, start + n, dtype=np.int64)),
            "text": pa.array(list(texts), type=pa.large_string()),
        }
    )


_TOKENIZERS: dict[str | None, Any] = {}


def _worker_tokenizer(spec: Any) -> Any:
    """A tokenizer from its spec: ``None`` or a path is loaded once per worker process."""
    if spec is None or isinstance(spec, str):
        tok = _TOKENIZERS.get(spec)
        if tok is None:
            from tritondiv.tokens import load_tokenizer

            tok = _TOKENIZERS[spec] = load_tokenizer(spec)
        return tok
    return spec


def _tokenize_block(batch: Any, tokenizer: Any, add_special_tokens: bool, batch_size: int) -> Any:
    import pyarrow as pa

    from tritondiv.tokens import tokenize

    texts = batch.column("text").to_pylist()
    csr = tokenize(
        texts,
        _worker_tokenizer(tokenizer),
        batch_size=batch_size,
        add_special_tokens=add_special_tokens,
        progress=False,
    )
    ids = pa.LargeListArray.from_arrays(pa.array(csr.offsets), pa.array(csr.ids))
    return pa.table({"shard": batch.column("shard"), "row": batch.column("row"), "ids": ids})


def _list_csr(column: Any) -> tuple[np.ndarray, np.ndarray]:
    """(offsets int64[n+1] from 0, values) of an Arrow list column (chunked or sliced)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets, col.flatten().to_numpy(zero_copy_only=False)


def _block_csr(batch: Any, vocab_size: int) -> Any:
    from tritondiv.tokens import TokenCSR

    offsets, ids = _list_csr(batch.column("ids"))
    return TokenCSR(offsets, ids, vocab_size)


def _bigram_keys(offsets: np.ndarray, ids: np.ndarray, vocab_size: int) -> tuple[np.ndarray, int]:
    """Distinct bigrams of a CSR as sorted ``a * vocab_size + b`` keys, and the bigram total.

    Exact (``vocab_size < 2**31`` so a key fits in 63 bits), like the core's distinct-2;
    bigrams never cross a sample boundary.
    """
    nnz = ids.size
    if nnz < 2:
        return np.zeros(0, dtype=np.int64), 0
    valid = np.ones(nnz - 1, dtype=bool)
    ends = offsets[1:] - 1  # the last token of each sample starts no bigram
    valid[ends[(ends >= 0) & (ends < nnz - 1)]] = False
    a = ids[:-1].astype(np.int64)[valid]
    keys = a * np.int64(vocab_size) + ids[1:].astype(np.int64)[valid]
    total = int(np.maximum(np.diff(offsets) - 1, 0).sum())
    return np.unique(keys), total


def _union_size(sets: list[np.ndarray]) -> int:
    """Size of the union of sorted, duplicate-free key arrays (merged pairwise, as a tree)."""
    while len(sets) > 1:
        merged = [np.union1d(a, b) for a, b in zip(sets[::2], sets[1::2], strict=False)]
        sets = merged + ([sets[-1]] if len(sets) % 2 else [])
    return int(sets[0].size) if sets else 0


def _count_block(batch: Any, vocab_size: int, bigrams: bool) -> Any:
    import pyarrow as pa

    from tritondiv.stats import token_counts

    csr = _block_csr(batch, vocab_size)
    tc = token_counts(csr)
    keys, total = (
        _bigram_keys(csr.offsets, csr.ids, vocab_size) if bigrams else (np.zeros(0, np.int64), 0)
    )

    def one_row(values: np.ndarray) -> Any:
        return pa.LargeListArray.from_arrays(pa.array([0, values.size]), pa.array(values))

    return pa.table(
        {
            "rows": pa.array([batch.num_rows], type=pa.int64()),
            "counts": one_row(tc.counts),
            "df": one_row(tc.df),
            "bigrams": one_row(keys),
            "n_bigrams": pa.array([total], type=pa.int64()),
        }
    )


def _band_block(batch: Any, vocab_size: int, counts: np.ndarray, lo: int, hi: int) -> Any:
    import pyarrow as pa

    from tritondiv._runtime import _core

    csr = _block_csr(batch, vocab_size)
    # Copied into a fresh array: an unpickled array carries an equal but not identical
    # dtype object, which the core's strict dtype check rejects.
    global_counts = np.zeros(counts.size, dtype=np.int64)
    global_counts[:] = counts
    offsets, types, _band = _core.band_incidence(
        csr.offsets, csr.ids, vocab_size, global_counts, lo, hi
    )
    return pa.table(
        {
            "shard": batch.column("shard"),
            "row": batch.column("row"),
            "length": pa.array(csr.lengths()),
            "types": pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(types)),
        }
    )


# ---- the driver ---------------------------------------------------------------------------


def _stacked(column: Any, width: int) -> np.ndarray:
    """The one-row-per-block list column as an ``int64[blocks, width]`` matrix."""
    _offsets, values = _list_csr(column)
    return np.asarray(values, dtype=np.int64).reshape(-1, width)


def pc_sum(column: Any) -> int:
    return int(np.asarray(column.to_numpy(), dtype=np.int64).sum())


def _check_blocks(num_blocks: int | None) -> int | None:
    if num_blocks is None:
        return None
    if isinstance(num_blocks, bool) or not isinstance(num_blocks, int | np.integer):
        raise TypeError(f"num_blocks must be an int or None, got {type(num_blocks).__name__}")
    if num_blocks < 1:
        raise ValueError(f"num_blocks={num_blocks} must be >= 1")
    return int(num_blocks)


def _shard_paths(source: Any) -> list[str]:
    """Pool files of a source (a path or a list of paths), in the order load_pool reads them."""
    from tritondiv.pool.readers import expand

    sources = [source] if isinstance(source, str | os.PathLike) else list(source)
    if not sources:
        raise ValueError("source: no pool files given; pass a Pool, a path or a list of paths")
    for s in sources:
        if not isinstance(s, str | os.PathLike):
            raise TypeError(
                f"source: expected a Pool, a path or a list of paths, got an entry of type "
                f"{type(s).__name__}"
            )
    # absolute: the workers do not share the driver's working directory
    return [str(Path(p).resolve()) for s in sources for p, _rel in expand(s)]


def _vocab_size(tokenizer: Any) -> tuple[Any, int]:
    from tritondiv.tokens import WhitespaceTokenizer, load_tokenizer

    if (isinstance(tokenizer, str) and tokenizer == "whitespace") or isinstance(
        tokenizer, WhitespaceTokenizer
    ):
        raise ValueError(
            "tokenizer: the whitespace tokenizer numbers the words of the whole pool as it "
            "reads them, so blocks cannot be tokenized apart; it is not on Ray (use the local "
            "engine, or a tokenizer.json)"
        )
    if tokenizer is None or isinstance(tokenizer, str | os.PathLike):
        # a packaged tokenizer's name stays a name (every worker has the package); a path
        # is made absolute, since the workers do not share the driver's working directory
        if tokenizer is None or (isinstance(tokenizer, str) and tokenizer in _NAMED):
            spec = tokenizer
        else:
            spec = str(Path(tokenizer).resolve())
        tok = load_tokenizer(spec)  # validates the path here, before any task starts
        return spec, int(tok.get_vocab_size(with_added_tokens=True))
    if not hasattr(tokenizer, "get_vocab_size"):
        raise TypeError(
            f"tokenizer: expected a tokenizers.Tokenizer, a path or None, got "
            f"{type(tokenizer).__name__}"
        )
    return tokenizer, int(tokenizer.get_vocab_size(with_added_tokens=True))


def token_stats_ray(
    source: Any,
    component: str,
    tokenizer: Any = None,
    *,
    lo: Threshold = 10,
    hi: Threshold = 500,
    address: str | None = None,
    num_blocks: int | None = None,
    format: str = "auto",
    first_turn_only: bool = False,
    skip_bad: bool = False,
    allow_empty: bool = False,
    add_special_tokens: bool = False,
    batch_size: int = 2048,
    max_retries: int = 3,
    ns: tuple[int, ...] = (1, 2),
) -> RayTokenStats:
    """Token counts, document frequencies and the band incidence of a pool, on Ray.

    The result equals the local engine's (``tritondiv.stats.token_counts`` and
    ``token_stats`` on ``tokenize(pool.component(component), tokenizer)``) bit for bit:
    counts and dfs are ``int64`` sums, the incidence rows are in pool order.

    Parameters
    ----------
    source : Pool, str, os.PathLike or sequence of paths
        An in-memory pool, or pool files / directories as :func:`tritondiv.load_pool`
        reads them (each file becomes one read task; on a multi-node cluster the paths
        must be readable from every node, e.g. shared storage).
    component : {"instruction", "response"}
        Which text of each sample.
    tokenizer : tokenizers.Tokenizer, str or os.PathLike, optional
        As in :func:`tritondiv.load_tokenizer` (default: the packaged SmolLM2 one). A name
        (``"smollm2"``, ``"minilm"``), a path or the default is loaded once per worker; a
        loaded tokenizer is shipped. The ``"whitespace"`` tokenizer (which numbers the words
        of the whole pool) is refused with a ``ValueError``.
    lo, hi : int or str, default 10 and 500
        Band bounds, absolute or relative to the pool size (see :mod:`tritondiv.stats`).
    address : str, optional
        Ray cluster to connect to when no session is running (default: a local one).
    num_blocks : int, optional
        Blocks to tokenize and count in parallel (default: twice the cluster's CPUs). Pool
        files are split into this many blocks when there are fewer of them; more files
        stay one block each.
    format, first_turn_only, skip_bad, allow_empty
        How pool files are read (as in :func:`tritondiv.load_pool`); ignored for a Pool.
    add_special_tokens : bool, default False
        As in :func:`tritondiv.tokenize`.
    batch_size : int, default 2048
        Texts per tokenizer call inside a block.
    max_retries : int, default 3
        Times Ray reruns a block's task whose worker died.
    ns : tuple of int, default (1, 2)
        Orders of the distinct-n ratios, 1 and/or 2 (exact: each block ships its distinct
        bigrams, the driver takes their union). 3 and 4 are not computed on Ray.

    Returns
    -------
    RayTokenStats
    """
    from tritondiv.pool import FORMATS, Pool

    if component not in _COMPONENTS:
        raise ValueError(f"component must be one of {_COMPONENTS}, got {component!r}")
    resolve_threshold(lo, 1)  # type and syntax errors now, not after the cluster ran
    resolve_threshold(hi, 1, upper=True)
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {format!r}")
    num_blocks = _check_blocks(num_blocks)
    if not isinstance(ns, tuple | list) or any(isinstance(n, bool) or n not in (1, 2) for n in ns):
        raise ValueError(f"ns must hold orders 1 and/or 2 on Ray, got {ns!r}")
    ns = tuple(int(n) for n in ns)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")
    tok_spec, vocab_size = _vocab_size(tokenizer)
    is_pool = isinstance(source, Pool)
    paths = [] if is_pool else _shard_paths(source)

    if is_pool and len(source) == 0:
        raise ValueError("source: the pool has no samples")
    ray = ensure_ray(address)
    import pyarrow as pa

    if num_blocks is None:
        num_blocks = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
    remote = {"max_retries": max_retries}
    seconds: dict[str, float] = {}

    t0 = time.perf_counter()
    if is_pool:
        texts = source.component(component)
        bounds = np.linspace(0, len(texts), min(num_blocks, len(texts)) + 1).astype(np.int64)
        ds = ray.data.from_arrow(
            [_text_table(0, int(a), texts[int(a) : int(b)]) for a, b in itertools.pairwise(bounds)]
        )
    else:
        load_kwargs = dict(
            zip(_LOAD_KEYS, (format, first_turn_only, skip_bad, allow_empty), strict=True)
        )
        shards = ray.data.from_items(
            [{"shard": i, "path": p} for i, p in enumerate(paths)],
            override_num_blocks=len(paths),
        )
        ds = quiet_remote_args(
            shards.map_batches,
            _read_shards,
            batch_size=1,
            batch_format="numpy",
            fn_kwargs={"component": component, "load_kwargs": load_kwargs},
            **remote,
        )
        if len(paths) < num_blocks:  # fewer files than blocks: split them (a barrier)
            ds = ds.repartition(num_blocks)
    tokens = quiet_remote_args(
        ds.map_batches,
        _tokenize_block,
        batch_size=None,
        batch_format="pyarrow",
        fn_kwargs={
            "tokenizer": tok_spec,
            "add_special_tokens": bool(add_special_tokens),
            "batch_size": batch_size,
        },
        **remote,
    ).materialize()
    n_blocks = int(tokens.num_blocks())
    seconds["texts_tokenize"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    counts = np.zeros(vocab_size, dtype=np.int64)
    df = np.zeros(vocab_size, dtype=np.int64)
    n_samples = 0
    per_block = quiet_remote_args(
        tokens.map_batches,
        _count_block,
        batch_size=None,
        batch_format="pyarrow",
        fn_kwargs={"vocab_size": vocab_size, "bigrams": 2 in ns},
        **remote,
    )
    gram_sets: list[np.ndarray] = []
    n_bigrams = 0
    for b in per_block.iter_batches(batch_size=None, batch_format="pyarrow"):
        n_samples += int(pc_sum(b.column("rows")))
        n_bigrams += int(pc_sum(b.column("n_bigrams")))
        counts += _stacked(b.column("counts"), vocab_size).sum(axis=0, dtype=np.int64)
        df += _stacked(b.column("df"), vocab_size).sum(axis=0, dtype=np.int64)
        _o, keys = _list_csr(b.column("bigrams"))
        if keys.size:
            gram_sets.append(np.asarray(keys, dtype=np.int64))
    n_distinct_bigrams = _union_size(gram_sets)
    seconds["count"] = time.perf_counter() - t0
    if n_samples == 0:
        raise ValueError("source: the pool has no samples")

    from tritondiv._runtime import _core
    from tritondiv.stats import resolve_band

    lo_c, hi_c = resolve_band(lo, hi, n_samples)
    _o, _t, band = _core.band_incidence(
        np.zeros(1, np.int64), np.zeros(0, np.int32), vocab_size, counts, lo_c, hi_c
    )
    t0 = time.perf_counter()
    rows = quiet_remote_args(
        tokens.map_batches,
        _band_block,
        batch_size=None,
        batch_format="pyarrow",
        fn_kwargs={"vocab_size": vocab_size, "counts": counts, "lo": lo_c, "hi": hi_c},
        **remote,
    )
    tables = list(rows.iter_batches(batch_size=None, batch_format="pyarrow"))
    seconds["band"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    table = pa.concat_tables(tables).sort_by([("shard", "ascending"), ("row", "ascending")])
    lengths = table.column("length").to_numpy().astype(np.int64)
    inc_offsets, inc_types = _list_csr(table.column("types"))
    incidence = Incidence(inc_offsets, inc_types, int(band.size), labels=band)
    seconds["gather"] = time.perf_counter() - t0
    del tokens
    n_tokens = int(lengths.sum())
    distinct: dict[int, float] = {}
    for n in ns:
        found = int((counts > 0).sum()) if n == 1 else n_distinct_bigrams
        possible = n_tokens if n == 1 else n_bigrams
        distinct[n] = float(found) / possible if possible else math.nan
    return RayTokenStats(
        component=component,
        n_samples=n_samples,
        n_tokens=n_tokens,
        vocab_size=vocab_size,
        lo=lo_c,
        hi=hi_c,
        counts=counts,
        df=df,
        lengths=lengths,
        band=band,
        incidence=incidence,
        distinct=distinct,
        num_blocks=n_blocks,
        seconds=seconds,
    )
