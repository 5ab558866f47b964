"""Embeddings and keyphrase tags of a pool component on Ray Data, in pool order.

* :func:`embed_ray` — the pool's texts are cut into ``num_blocks`` contiguous blocks; each
  block is one ``map_batches`` call of :func:`tritondiv.features.embed_texts` (the same
  model, ``max_seq_length`` and ``batch_size`` as :func:`tritondiv.features.embed_pool`;
  the model is loaded once per worker process). The driver puts the rows back in pool
  order. sentence-transformers sorts the texts of one call by length before batching, so
  a block's forward batches differ from the single-machine run's: the rows agree with the
  local embeddings to float32 rounding (about 1e-6 per value), not bit for bit.
* :func:`keyphrase_tags_ray` — the keyphrase tagger
  (:class:`tritondiv.features.KeyphraseTagger`) keeps only the candidate phrases *shared*
  across the whole pool (``min_df``/``max_df``), so tags are pool-dependent; on Ray this is
  two passes: (1) every block counts the documents each candidate phrase occurs in
  (:func:`tritondiv.features.extract_candidates`), the driver adds the counts and applies
  the tagger's document-frequency rule to the global counts (:func:`shared_phrases`);
  (2) every block tags its texts with that global phrase set
  (:meth:`~tritondiv.features.KeyphraseTagger.tag` with the block's text embeddings).
  The meso incidence is then built on the driver from the gathered raw tags by the local
  :func:`tritondiv.families.meso_types` (tag normalization: its own pool-wide document
  frequencies and merges, on the reduced tag set).

Phrase strings, never Python ``hash`` values, cross process boundaries (``hash`` of a
``str`` is salted per process).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tritondiv.distributed._ray import ensure_ray, quiet_remote_args

__all__ = ["RayTags", "embed_ray", "keyphrase_tags_ray", "shared_phrases"]

_COMPONENTS = ("instruction", "response")


def _texts(source: Any, component: str) -> list[str]:
    if component not in _COMPONENTS:
        raise ValueError(f"component must be one of {_COMPONENTS}, got {component!r}")
    if hasattr(source, "component"):
        return list(source.component(component))
    if isinstance(source, Sequence) and not isinstance(source, str):
        texts = list(source)
        bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
        if bad is not None:
            raise TypeError(f"source[{bad}] is {type(texts[bad]).__name__}, expected str")
        return texts
    raise TypeError(
        f"source must be a tritondiv Pool or a list of strings, got {type(source).__name__}"
    )


def _check_int(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name}={value} must be >= {low}")
    return int(value)


def _blocks(ray: Any, texts: list[str], num_blocks: int | None, extra: Any = None) -> Any:
    """A Ray dataset of ``row``/``text`` (and ``emb`` rows of ``extra``) in contiguous blocks."""
    import pyarrow as pa

    if num_blocks is None:
        num_blocks = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
    bounds = np.linspace(0, len(texts), min(num_blocks, len(texts)) + 1).astype(np.int64)
    tables = []
    for a, b in itertools.pairwise(bounds.tolist()):
        cols: dict[str, Any] = {
            "row": pa.array(np.arange(a, b, dtype=np.int64)),
            "text": pa.array(texts[a:b], type=pa.large_string()),
        }
        if extra is not None:
            d = extra.shape[1]
            flat = pa.array(np.ascontiguousarray(extra[a:b], dtype=np.float32).ravel())
            cols["emb"] = pa.FixedSizeListArray.from_arrays(flat, d)
        tables.append(pa.table(cols))
    return ray.data.from_arrow(tables)


def _fixed_rows(column: Any) -> np.ndarray:
    """``float32[n, d]`` of an Arrow fixed-size-list column (chunked or not)."""
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    d = column.type.list_size
    values = column.flatten().to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float32).reshape(len(column), d)


# ---- embeddings -------------------------------------------------------------------------------


def _embed_block(
    batch: Any, model: Any, max_seq_length: int, batch_size: int
) -> Any:  # pragma: no cover - runs in a Ray worker
    import pyarrow as pa

    from tritondiv.features import embed_texts

    texts = batch.column("text").to_pylist()
    emb = embed_texts(
        texts, model, batch_size=batch_size, max_seq_length=max_seq_length, progress=False
    )
    flat = pa.array(np.ascontiguousarray(emb, dtype=np.float32).ravel())
    return pa.table(
        {"row": batch.column("row"), "emb": pa.FixedSizeListArray.from_arrays(flat, emb.shape[1])}
    )


def embed_ray(
    source: Any,
    component: str,
    model: str | None = None,
    *,
    max_seq_length: int = 128,
    batch_size: int = 64,
    num_blocks: int | None = None,
    address: str | None = None,
    max_retries: int = 3,
) -> np.ndarray:
    """Embeddings of one component of a pool computed on Ray Data, one row per sample.

    Parameters
    ----------
    source : Pool or list of str
        The pool (its ``component`` texts are shipped to the cluster), or the texts.
    component : {"instruction", "response"}
    model : str, optional
        A local sentence-transformers directory, the same on every node (default: the
        packaged all-MiniLM-L6-v2, as :func:`tritondiv.features.embed_pool`).
    max_seq_length, batch_size : int
        As :func:`tritondiv.features.embed_texts` (the local engine's 128 and 64).
    num_blocks : int, optional
        Blocks (one ``map_batches`` call each; default ``2 x`` the cluster's CPUs).
    address : str, optional
        Ray cluster to join (default: the running session, else a new local one).
    max_retries : int, default 3
        Times a block whose worker died is rerun.

    Returns
    -------
    numpy.ndarray
        ``float32[N, d]``, L2-normalized, in pool order.
    """
    texts = _texts(source, component)
    if not texts:
        raise ValueError("source: the pool has no samples")
    if model is not None and not isinstance(model, str):
        raise TypeError(
            f"model must be a local model directory (str) on Ray, got {type(model).__name__}"
        )
    max_seq_length = _check_int(max_seq_length, "max_seq_length", 1)
    batch_size = _check_int(batch_size, "batch_size", 1)
    max_retries = _check_int(max_retries, "max_retries", 0)
    if num_blocks is not None:
        num_blocks = _check_int(num_blocks, "num_blocks", 1)
    ray = ensure_ray(address)
    ds = _blocks(ray, texts, num_blocks)
    out_ds = quiet_remote_args(
        ds.map_batches,
        _embed_block,
        batch_size=None,
        batch_format="pyarrow",
        fn_kwargs={"model": model, "max_seq_length": max_seq_length, "batch_size": batch_size},
        max_retries=max_retries,
    )
    out: np.ndarray | None = None
    for b in out_ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        rows = b.column("row").to_numpy()
        emb = _fixed_rows(b.column("emb"))
        if out is None:
            out = np.zeros((len(texts), emb.shape[1]), dtype=np.float32)
        out[rows] = emb
    assert out is not None
    return out


# ---- keyphrase tags (two passes) --------------------------------------------------------------


@dataclass(frozen=True)
class RayTags:
    """Raw keyphrase tags computed on Ray.

    Attributes
    ----------
    tags : list of list of str
        One list per sample, in pool order (what :func:`tritondiv.features.tag_pool` gives).
    n_phrases : int
        Distinct candidate phrases of the pool (pass 1).
    shared : int
        Phrases the document-frequency rule kept.
    generic : int
        Phrases above ``max_df`` (kept only by texts with nothing else).
    seconds : dict of str to float
        ``phrase_df`` (pass 1), ``rule`` (driver), ``tag`` (pass 2).
    """

    tags: list[list[str]] = field(repr=False)
    n_phrases: int
    shared: int
    generic: int
    seconds: dict[str, float] = field(default_factory=dict, compare=False)


def _phrase_df_block(
    batch: Any, ngram_range: tuple[int, int], max_words: int
) -> Any:  # pragma: no cover - runs in a Ray worker
    import pyarrow as pa

    from tritondiv.features.keyphrase import extract_candidates

    # candidates are distinct within a text: one occurrence = one document
    flat = [
        p
        for t in batch.column("text").to_pylist()
        for p in extract_candidates(t, ngram_range, max_words)
    ]
    table = pa.table({"phrase": pa.array(flat, type=pa.large_string())})
    return (
        table.group_by("phrase").aggregate([("phrase", "count")]).rename_columns(["phrase", "df"])
    )


def shared_phrases(
    phrases: Sequence[str] | np.ndarray,
    df: np.ndarray,
    n_texts: int,
    min_df: int | None,
    max_df: float | None,
) -> tuple[list[str], list[str]] | None:
    """The keyphrase tagger's document-frequency rule on reduced (global) counts.

    The rule of :meth:`tritondiv.features.KeyphraseTagger._shared_phrases` (which computes
    the counts itself, from the texts): a phrase is shared when it occurs in at least
    ``min_df`` texts and, when ``max_df * n_texts >= min_df``, in at most
    ``max_df * n_texts``; the phrases above that are generic.

    Returns
    -------
    (shared, generic) lists of phrases, or None when neither limit is set.
    """
    if min_df is None and max_df is None:
        return None
    df = np.asarray(df, dtype=np.int64)
    lo = min_df or 1
    generic = np.zeros(df.size, dtype=bool)
    if max_df is not None and max_df * n_texts >= lo:
        generic = df > max_df * n_texts
    ok = (df >= lo) & ~generic
    names = np.asarray(phrases, dtype=object)
    return names[ok].tolist(), names[generic].tolist()


def _fixed_tagger(tagger: Any, shared: tuple[list[str], list[str]] | None) -> Any:
    """A copy of ``tagger`` whose shared-phrase sets are ``shared`` (this process's hashes)."""
    from tritondiv.features import KeyphraseTagger

    keys: tuple[np.ndarray, np.ndarray] | None = None
    if shared is not None:
        ok, generic = (
            np.sort(np.fromiter((hash(p) for p in names), dtype=np.int64, count=len(names)))
            for names in shared
        )
        keys = (ok, generic)

    class _GlobalShared(KeyphraseTagger):
        def _shared_phrases(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
            return keys

    t = _GlobalShared.__new__(_GlobalShared)
    t.__dict__.update(tagger.__dict__)
    t.progress = False
    return t


def _tag_block(
    batch: Any, tagger: Any, shared: tuple[list[str], list[str]] | None
) -> Any:  # pragma: no cover - runs in a Ray worker
    import pyarrow as pa

    t = _fixed_tagger(tagger, shared)
    docs = _fixed_rows(batch.column("emb"))
    tags = t.tag(batch.column("text").to_pylist(), doc_embeddings=docs)
    return pa.table(
        {"row": batch.column("row"), "tags": pa.array(tags, type=pa.list_(pa.large_string()))}
    )


def keyphrase_tags_ray(
    source: Any,
    component: str,
    tagger: Any,
    *,
    doc_embeddings: np.ndarray | None = None,
    num_blocks: int | None = None,
    address: str | None = None,
    max_retries: int = 3,
) -> RayTags:
    """Keyphrase tags of one component of a pool, on Ray in two passes (see the module).

    Parameters
    ----------
    source : Pool or list of str
        The pool, or the texts.
    component : {"instruction", "response"}
    tagger : tritondiv.features.KeyphraseTagger
        Its options (model, ``top_k``, ``min_df``/``max_df``, ...) are used on every block.
    doc_embeddings : numpy.ndarray, optional
        ``[N, d]`` text embeddings by the tagger's model (as ``tag_pool`` uses
        :func:`~tritondiv.features.embed_pool`'s); default: :func:`embed_ray`.
    num_blocks, address, max_retries
        As :func:`embed_ray`.

    Returns
    -------
    RayTags
    """
    from tritondiv.features import KeyphraseTagger

    if not isinstance(tagger, KeyphraseTagger):
        raise TypeError(
            f"tagger: expected a KeyphraseTagger on Ray, got {type(tagger).__name__} "
            "(column tags are read locally; the llm tagger runs with --engine local)"
        )
    texts = _texts(source, component)
    if not texts:
        raise ValueError("source: the pool has no samples")
    max_retries = _check_int(max_retries, "max_retries", 0)
    if num_blocks is not None:
        num_blocks = _check_int(num_blocks, "num_blocks", 1)
    if doc_embeddings is None:
        doc_embeddings = embed_ray(
            texts,
            component,
            tagger.model,
            max_seq_length=tagger.max_seq_length,
            num_blocks=num_blocks,
            address=address,
            max_retries=max_retries,
        )
    docs = np.asarray(doc_embeddings, dtype=np.float32)
    if docs.ndim != 2 or docs.shape[0] != len(texts):
        raise ValueError(
            f"doc_embeddings has shape {docs.shape}; expected ({len(texts)}, d) for the pool"
        )
    ray = ensure_ray(address)
    import pyarrow as pa

    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    ds = _blocks(ray, texts, num_blocks, extra=docs).materialize()
    counts = quiet_remote_args(
        ds.map_batches,
        _phrase_df_block,
        batch_size=None,
        batch_format="pyarrow",
        fn_kwargs={"ngram_range": tagger.ngram_range, "max_words": tagger.max_words},
        max_retries=max_retries,
    )
    parts = list(counts.iter_batches(batch_size=None, batch_format="pyarrow"))
    table = pa.concat_tables(parts).group_by("phrase").aggregate([("df", "sum")])
    seconds["phrase_df"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    shared = shared_phrases(
        table.column("phrase").to_pylist(),
        table.column("df_sum").to_numpy(),
        len(texts),
        tagger.min_df,
        tagger.max_df,
    )
    seconds["rule"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    tagged = quiet_remote_args(
        ds.map_batches,
        _tag_block,
        batch_size=None,
        batch_format="pyarrow",
        fn_kwargs={"tagger": tagger, "shared": shared},
        max_retries=max_retries,
    )
    tags: list[list[str]] = [[] for _ in texts]
    for b in tagged.iter_batches(batch_size=None, batch_format="pyarrow"):
        for r, row in zip(b.column("row").to_pylist(), b.column("tags").to_pylist(), strict=True):
            tags[r] = list(row)
    seconds["tag"] = time.perf_counter() - t0
    return RayTags(
        tags=tags,
        n_phrases=int(table.num_rows),
        shared=0 if shared is None else len(shared[0]),
        generic=0 if shared is None else len(shared[1]),
        seconds=seconds,
    )
