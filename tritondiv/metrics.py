"""The paper's diversity measures, per component (instruction and response).

=========================  ==============================================================
metric                     definition
=========================  ==============================================================
``distinct_1/2``           distinct n-grams / all n-grams of the model tokenizer's ids
``token_entropy``          Shannon entropy (bits) of the token-id distribution
``mean_pairwise_distance`` mean cosine distance ``1 - cos`` over all pairs of embeddings
``mean_length``            mean number of tokens per sample (``mean_chars``: characters)
``compression_ratio``      raw UTF-8 bytes / zlib (level 6) bytes of the texts joined by
                           newlines — higher means more redundant text
``self_bleu``              mean BLEU-4 of each sampled text against the other sampled texts
                           (words: ``\\w+`` or one punctuation mark, lowercased; uniform
                           weights; brevity penalty against the closest reference length;
                           Chen & Cherry smoothing 1, epsilon 0.1 for zero counts; 0
                           without any unigram match — nltk's ``sentence_bleu`` rules);
                           ``self_bleu_sample`` states the sample size — lower is more diverse
``coverage``               distinct types of a type family carried by the dataset
=========================  ==============================================================

Self-BLEU is computed exactly and vectorized over the sample: for every n-gram the
largest and second-largest count among the sampled texts are kept, so each text's
clipped counts against "all the others" need no pairwise loop.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "component_metrics",
    "compression_ratio",
    "self_bleu",
    "subset_tokens",
    "word_ids",
]

_WORD = re.compile(r"\w+|[^\w\s]")
DEFAULT_BLEU_SAMPLE = 1000


def compression_ratio(texts: Sequence[str], level: int = 6) -> float:
    """Raw UTF-8 bytes / zlib-compressed bytes of ``texts`` joined by newlines."""
    raw = "\n".join(texts).encode("utf-8")
    if not raw:
        return 0.0
    return len(raw) / len(zlib.compress(raw, level))


def word_ids(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Lowercased word/punctuation tokens as ids: ``(offsets int64[R+1], ids int64[nnz])``."""
    vocab: dict[str, int] = {}
    rows = [[vocab.setdefault(w, len(vocab)) for w in _WORD.findall(t.lower())] for t in texts]
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.fromiter((i for r in rows for i in r), dtype=np.int64, count=int(offsets[-1]))
    return offsets, flat


def _dense(codes: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense ids of int64 codes via sort + diff (np.unique is slow on many values here)."""
    if codes.size == 0:
        return np.zeros(0, np.int64), 0
    order = np.argsort(codes, kind="stable")
    s = codes[order]
    new = np.empty(s.size, dtype=bool)
    new[0] = True
    np.not_equal(s[1:], s[:-1], out=new[1:])
    ids_sorted = np.cumsum(new) - 1
    out = np.empty(codes.size, dtype=np.int64)
    out[order] = ids_sorted
    return out, int(ids_sorted[-1]) + 1


def _clipped_counts(
    row: np.ndarray, gram: np.ndarray, n_rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: clipped n-gram matches against the other rows, and its total n-grams."""
    total = np.bincount(row, minlength=n_rows).astype(np.float64)
    if row.size == 0:
        return np.zeros(n_rows), total
    g_ids, n_g = _dense(gram)
    # counts per (row, gram)
    pair, _ = _dense(row * n_g + g_ids)
    first = np.full(int(pair.max()) + 1, -1, dtype=np.int64)
    first[pair[::-1]] = np.arange(pair.size - 1, -1, -1)
    cnt = np.bincount(pair).astype(np.int64)
    p_row = row[first]
    p_gram = g_ids[first]
    # max and second max count per gram, with the row of the max
    order = np.lexsort((-cnt, p_gram))
    sg, sc, sr = p_gram[order], cnt[order], p_row[order]
    start = np.ones(sg.size, dtype=bool)
    start[1:] = sg[1:] != sg[:-1]
    max1 = np.zeros(n_g, np.int64)
    argrow = np.full(n_g, -1, np.int64)
    max1[sg[start]] = sc[start]
    argrow[sg[start]] = sr[start]
    second = np.zeros(sg.size, dtype=bool)
    second[1:] = start[:-1] & ~start[1:]
    max2 = np.zeros(n_g, np.int64)
    max2[sg[second]] = sc[second]
    other = np.where(argrow[p_gram] == p_row, max2[p_gram], max1[p_gram])
    clipped = np.minimum(cnt, other)
    return np.bincount(p_row, weights=clipped, minlength=n_rows), total


def self_bleu(
    texts: Sequence[str],
    *,
    sample: int | None = DEFAULT_BLEU_SAMPLE,
    seed: int = 0,
    max_n: int = 4,
    epsilon: float = 0.1,
) -> tuple[float, int]:
    """Self-BLEU: mean BLEU-``max_n`` of each sampled text against the other sampled texts.

    Parameters
    ----------
    texts : sequence of str
        The dataset's texts of one component.
    sample : int or None
        Number of texts drawn (seeded, without replacement); ``None`` uses all.
    seed : int
        Seed of the sample.
    max_n : int
        Highest n-gram order (uniform weights ``1/max_n``).
    epsilon : float
        Smoothing of zero clipped counts (Chen & Cherry method 1).

    Returns
    -------
    (float, int)
        Self-BLEU in ``[0, 1]`` and the number of texts it was computed on. Fewer than two
        texts give ``(0.0, m)``.
    """
    texts = list(texts)
    m = len(texts)
    if sample is not None and m > sample:
        pick = np.sort(np.random.default_rng(seed).choice(m, size=sample, replace=False))
        texts = [texts[i] for i in pick]
        m = sample
    if m < 2:
        return 0.0, m
    offsets, flat = word_ids(texts)
    lengths = np.diff(offsets)
    row_of = np.repeat(np.arange(m, dtype=np.int64), lengths)
    end = offsets[1:][row_of] if flat.size else np.zeros(0, np.int64)
    pos = np.arange(flat.size, dtype=np.int64)
    vocab = int(flat.max()) + 1 if flat.size else 1
    log_p = np.zeros(m)
    cur = flat.copy()  # dense id of the gram of order n starting at each position (-1 invalid)
    for n in range(1, max_n + 1):
        if n > 1:
            valid = (pos + n - 1 < end) & (cur >= 0)
            nxt = np.full(flat.size, -1, dtype=np.int64)
            if valid.any():
                codes = cur[valid] * vocab + flat[pos[valid] + n - 1]
                nxt[valid], _ = _dense(codes)
            cur = nxt
        valid = cur >= 0
        clipped, total = _clipped_counts(row_of[valid], cur[valid], m)
        if n == 1:
            unigram_match = clipped > 0
        num = np.where(clipped > 0, clipped, epsilon)
        log_p += np.log(num / np.maximum(total, 1.0)) / max_n
    # brevity penalty against the closest other length (ties: the shorter one), vectorized:
    # a length seen twice is its own closest; otherwise the sorted neighbours decide
    h = lengths.astype(np.float64)
    s = np.sort(h)
    left = np.searchsorted(s, h, side="left")
    right = np.searchsorted(s, h, side="right")
    prev = np.where(left > 0, s[np.maximum(left - 1, 0)], -np.inf)
    nxt = np.where(right < m, s[np.minimum(right, m - 1)], np.inf)
    nearest = np.where(nxt - h < h - prev, nxt, prev)
    closest = np.where(right - left >= 2, h, nearest)
    bp = np.where(h > closest, 1.0, np.exp(1.0 - closest / np.maximum(h, 1e-300)))
    # as nltk: no unigram match at all gives 0 (not the smoothed value)
    bleu = np.where((h > 0) & unigram_match, bp * np.exp(log_p), 0.0)
    return float(bleu.mean()), m


def subset_tokens(tokens: Any, indices: np.ndarray | Sequence[int]) -> Any:
    """The rows ``indices`` of a :class:`tritondiv.tokens.TokenCSR` (in that order)."""
    from tritondiv.tokens import TokenCSR

    idx = np.asarray(indices, dtype=np.int64)
    offsets = np.asarray(tokens.offsets, dtype=np.int64)
    lengths = np.diff(offsets)[idx]
    new_off = np.zeros(idx.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_off[1:])
    starts = np.repeat(offsets[idx], lengths)
    within = np.arange(new_off[-1], dtype=np.int64) - np.repeat(new_off[:-1], lengths)
    ids = np.asarray(tokens.ids)[starts + within]
    return TokenCSR(new_off, np.ascontiguousarray(ids), tokens.vocab_size)


def component_metrics(
    texts: Sequence[str],
    tokens: Any,
    embeddings: np.ndarray | None = None,
    *,
    bleu_sample: int | None = DEFAULT_BLEU_SAMPLE,
    pairwise_sample: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Every diversity metric of one component of a dataset.

    Parameters
    ----------
    texts : sequence of str
        The component's texts.
    tokens : TokenCSR
        The same texts' token ids (model tokenizer).
    embeddings : numpy.ndarray, optional
        ``[n, d]`` embeddings; ``mean_pairwise_distance`` is ``None`` without them.
    bleu_sample : int or None
        Self-BLEU sample size (``None``: all texts).
    pairwise_sample : int or None
        Sample for the mean pairwise distance (``None``: exact over all pairs).
    seed : int
        Seed of the samples.

    Returns
    -------
    dict
        ``distinct_1, distinct_2, token_entropy, mean_length, mean_chars,
        compression_ratio, self_bleu, self_bleu_sample, mean_pairwise_distance, n``.
    """
    from tritondiv.stats import distinct_n, token_entropy

    n = len(texts)
    lengths = np.diff(np.asarray(tokens.offsets, dtype=np.int64))
    out: dict[str, Any] = {"n": n}
    out["distinct_1"] = float(distinct_n(tokens, 1)) if lengths.sum() else 0.0
    out["distinct_2"] = float(distinct_n(tokens, 2)) if lengths.sum() else 0.0
    out["token_entropy"] = float(token_entropy(tokens, unit="bits")) if lengths.sum() else 0.0
    out["mean_length"] = float(lengths.mean()) if n else 0.0
    out["mean_chars"] = float(np.mean([len(t) for t in texts])) if n else 0.0
    out["compression_ratio"] = compression_ratio(texts)
    sb, m = self_bleu(texts, sample=bleu_sample, seed=seed)
    out["self_bleu"] = sb
    out["self_bleu_sample"] = m
    if embeddings is not None and n >= 2:
        from tritondiv.kernels import mean_dissimilarity

        res = mean_dissimilarity(
            np.ascontiguousarray(embeddings, dtype=np.float32),
            metric="cosine",
            sample=pairwise_sample,
            seed=seed,
        )
        out["mean_pairwise_distance"] = float(res.mean)
    else:
        out["mean_pairwise_distance"] = None
    return out


METRIC_NAMES: tuple[str, ...] = (
    "distinct_1",
    "distinct_2",
    "token_entropy",
    "mean_pairwise_distance",
    "mean_length",
    "compression_ratio",
    "self_bleu",
)


def dataset_file_metrics(
    path: str | Any,
    *,
    tokenizer: str | None = None,
    embedding_model: str | None = None,
    embed: bool = True,
    bleu_sample: int | None = DEFAULT_BLEU_SAMPLE,
    seed: int = 0,
    limit: int | None = None,
) -> dict[str, Any]:
    """Metrics of a dataset folder (its data + optional manifest) or any pool file.

    A dataset folder, or a ``.jsonl`` file, is read by
    :func:`tritondiv.dataset.read_dataset` (records of several formats; a manifest is
    verified first, and supplies how the pool was read and the type coverage); other pool
    files by :func:`tritondiv.pool.load_pool`. Texts are re-tokenized (``tokenizer``) and,
    with ``embed``, re-embedded (``embedding_model``).

    Raises
    ------
    DatasetError
        The data does not match its manifest's sha256 (a ``ValueError`` naming the file).
    """
    from pathlib import Path

    from tritondiv.dataset import is_dataset_source, read_dataset
    from tritondiv.pool import load_pool
    from tritondiv.tokens import load_tokenizer, tokenize

    p = Path(path)
    manifest: dict[str, Any] | None = None
    if p.is_dir() or is_dataset_source(p):
        ds = read_dataset(p, verify=True, limit=limit)
        pool, manifest = ds.pool, ds.manifest
    elif not p.is_file():
        raise FileNotFoundError(f"{p} does not exist: pass a dataset folder or a pool file")
    else:
        pool = load_pool(str(p), limit=limit)
    tok = load_tokenizer(tokenizer)
    out: dict[str, Any] = {"dataset": str(p), "n": len(pool)}
    for component in ("instruction", "response"):
        texts = [str(t) for t in pool.component(component)]
        tokens = tokenize(texts, tok, progress=False)
        emb = None
        if embed and texts:
            from tritondiv.features import embed_texts

            emb = embed_texts(texts, embedding_model, progress=False)
        out[component] = component_metrics(texts, tokens, emb, bleu_sample=bleu_sample, seed=seed)
    if manifest is not None:
        out["strategy"] = manifest.get("strategy")
        out["level"] = manifest.get("level")
        out["coverage"] = {
            "own": {
                "family": manifest.get("type_family"),
                "covered": manifest.get("coverage"),
                "n_types": manifest.get("n_types"),
            },
            **(((manifest.get("metrics") or {}).get("coverage")) or {}),
        }
    else:
        out["coverage"] = None
    return out
