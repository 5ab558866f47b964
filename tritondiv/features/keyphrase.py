"""The offline default tagger: KeyBERT-style keyphrases.

Candidate 1-3-word phrases of each text are scored by cosine similarity against the
text's embedding (:class:`KeyphraseTagger`). ``tritondiv.features.tags`` re-exports it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from tritondiv.features.embed import (
    component_texts,
    embed_pool,
    embed_texts,
    model_identity,
)

__all__ = ["STOPWORDS", "KeyphraseTagger", "extract_candidates"]

# A standard English stopword list (the union of the usual short lists).
STOPWORDS = frozenset(
    """a about above after again against all almost also am among an and any are aren't as at
    be because been before being below between both but by can can't cannot could couldn't did
    didn't do does doesn't doing don't down during each either else etc even ever every few for
    from further get gets got had hadn't has hasn't have haven't having he he'd he'll he's her
    here here's hers herself him himself his how how's however i i'd i'll i'm i've if in into is
    isn't it it's its itself just let's like may me might more most much must mustn't my myself
    neither no nor not now of off often on once only or other ought our ours ourselves out over
    own per rather same shall shan't she she'd she'll she's should shouldn't since so some such
    than that that's the their theirs them themselves then there there's these they they'd
    they'll they're they've this those though through thus to too under until up upon us very
    via was wasn't we we'd we'll we're we've were weren't what what's when when's where where's
    whether which while who who's whom whose why why's will with within without won't would
    wouldn't yet you you'd you'll you're you've your yours yourself yourselves one two also
    s t d ll m re ve n't ca wo ai""".split()
)

_TOKEN = re.compile(r"[^\W\d_][\w+#'\-]*[\w+#]|[^\W\d_]|\d+|[^\w\s]")
_WORDLIKE = re.compile(r"[^\W\d_]")
_INNER_OK = frozenset({"of", "and", "for", "in", "on", "to", "with"})


def extract_candidates(
    text: str, ngram_range: tuple[int, int] = (1, 3), max_words: int = 128
) -> list[str]:
    """Candidate keyphrases of ``text``: lowercase word n-grams, in first-occurrence order.

    An n-gram never spans punctuation, starts and ends with a non-stopword of at least 2
    characters that begins with a letter; its inner words are such words too, or one of
    "of, and, for, in, on, to, with" (so "list of numbers" is a candidate, "list a of" is
    not). Only the first ``max_words`` words give candidates. Words are joined by one space, so each phrase occurs in the lowercased text with
    its whitespace collapsed.
    """
    lo, hi = ngram_range
    seen: dict[str, None] = {}
    words: list[str] = []
    count = 0

    def flush() -> None:
        m = len(words)
        edge = [
            len(w) >= 2 and w not in STOPWORDS and _WORDLIKE.match(w) is not None for w in words
        ]
        inner = [e or w in _INNER_OK for e, w in zip(edge, words, strict=True)]
        for s in range(m):
            if not edge[s]:
                continue
            for n in range(lo, hi + 1):
                e = s + n - 1
                if e >= m or (n > 2 and not inner[e - 1]):
                    break
                if edge[e]:
                    seen.setdefault(" ".join(words[s : e + 1]), None)

    for tok in _TOKEN.findall(text.lower()):
        if tok[0].isalnum():
            words.append(tok)
            count += 1
            if count >= max_words:
                break
        else:
            flush()
            words = []
    flush()
    return list(seen)


def _member(values: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """``values`` found in the sorted array ``sorted_keys`` (boolean mask)."""
    if sorted_keys.size == 0:
        return np.zeros(values.size, dtype=bool)
    at = np.minimum(np.searchsorted(sorted_keys, values), sorted_keys.size - 1)
    return sorted_keys[at] == values


class KeyphraseTagger:
    """KeyBERT-style keyphrase tagger, fully offline (the default meso tagger).

    For each text: candidate phrases (:func:`extract_candidates`) are embedded with the
    same sentence model as the text; the ``top_k`` phrases most similar (cosine) to the
    text's embedding are its tags - optionally chosen by maximal marginal relevance (MMR)
    among the ``nr_candidates`` best, to avoid near-identical tags.

    Candidates are first restricted to phrases *shared* across the texts of the call (the
    pool): a phrase must occur in at least ``min_df`` texts and, when the pool is large
    enough (``max_df * N >= min_df``), in at most ``max_df * N`` of them - the thresholds
    of :func:`~tritondiv.features.tag_normalize.normalize_tags`, so that tags become types
    several samples share rather than names that normalization drops as rare. A text
    with no shared candidate keeps its own non-generic ones (or, if it has only generic
    ones, those). Tags thus depend on the whole set of
    texts tagged together (never on their order or batching).

    Work is batched: all candidate phrases of a batch of texts are de-duplicated (across the
    whole pool: phrase embeddings are kept in memory) and embedded at once; scoring and
    top-k selection are numpy operations over the batch.

    Parameters
    ----------
    model : see :func:`tritondiv.features.embed.load_embedder`
    top_k : int
        Tags per text (at most; fewer when the text has fewer candidates).
    ngram_range : (int, int)
        Phrase lengths in words.
    use_mmr : bool
        Pick by MMR (default True); False takes the plain top-k by similarity.
    diversity : float
        MMR trade-off in [0, 1] (0 = relevance only).
    nr_candidates : int
        MMR picks among this many most relevant candidates.
    max_words : int
        Only the first ``max_words`` words of a text give candidates (the text embedding
        sees about as many: ``max_seq_length`` model tokens).
    batch_size : int
        Texts per batch.
    max_seq_length : int
        Model tokens per text embedding.
    min_df : int or None
        Minimum number of texts a candidate phrase must occur in (default 2; None: no limit).
    max_df : float or None
        Maximum fraction of texts a candidate may occur in (default 0.2; None: no limit).
    progress : bool
        Show a progress bar.
    """

    def __init__(
        self,
        model: Any = None,
        top_k: int = 4,
        ngram_range: tuple[int, int] = (1, 3),
        *,
        use_mmr: bool = True,
        diversity: float = 0.5,
        nr_candidates: int = 20,
        max_words: int = 128,
        batch_size: int = 512,
        max_seq_length: int = 128,
        min_df: int | None = 2,
        max_df: float | None = 0.2,
        progress: bool = True,
    ) -> None:
        lo, hi = (int(x) for x in ngram_range)
        if min_df is not None and int(min_df) < 1:
            raise ValueError(f"min_df must be >= 1 or None, got {min_df!r}")
        if max_df is not None and not 0.0 < float(max_df) <= 1.0:
            raise ValueError(f"max_df must be a fraction in (0, 1] or None, got {max_df!r}")
        if not 1 <= lo <= hi:
            raise ValueError(
                f"ngram_range must be (lo, hi) with 1 <= lo <= hi, got {ngram_range!r}"
            )
        if int(top_k) < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k!r}")
        if not 0.0 <= float(diversity) <= 1.0:
            raise ValueError(f"diversity must lie in [0, 1], got {diversity!r}")
        self.model = model
        self.top_k = int(top_k)
        self.ngram_range = (lo, hi)
        self.use_mmr = bool(use_mmr)
        self.diversity = float(diversity)
        self.nr_candidates = max(int(nr_candidates), self.top_k)
        self.max_words = int(max_words)
        self.batch_size = int(batch_size)
        self.max_seq_length = int(max_seq_length)
        self.min_df = None if min_df is None else int(min_df)
        self.max_df = None if max_df is None else float(max_df)
        self.progress = bool(progress)
        self.name = "keyphrase"
        self._phrase_id: dict[str, int] = {}
        self._phrase_emb = np.zeros((0, 0), dtype=np.float32)
        self._n_phrases = 0
        self._names: list[str] = []

    def cache_key(self) -> str:
        """Options and model identity (for :func:`tag_pool`'s disk cache)."""
        return json.dumps(
            {
                "tagger": "keyphrase-v1",
                "model": model_identity(self.model),
                "top_k": self.top_k,
                "ngram_range": list(self.ngram_range),
                "use_mmr": self.use_mmr,
                "diversity": self.diversity,
                "nr_candidates": self.nr_candidates,
                "max_words": self.max_words,
                "max_seq_length": self.max_seq_length,
                "min_df": self.min_df,
                "max_df": self.max_df,
            },
            sort_keys=True,
        )

    def _shared_phrases(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
        """Sorted hashes of the candidate phrases allowed by ``min_df``/``max_df``, and of
        the too generic ones (above ``max_df``)."""
        if self.min_df is None and self.max_df is None:
            return None
        n = len(texts)
        keys = np.fromiter(
            (
                hash(p)
                for t in texts
                for p in extract_candidates(t, self.ngram_range, self.max_words)
            ),
            dtype=np.int64,
        )
        keys.sort()
        if keys.size == 0:
            return keys, keys
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        df = np.diff(np.r_[starts, keys.size])
        lo = self.min_df or 1
        generic = np.zeros(starts.size, dtype=bool)
        if self.max_df is not None and self.max_df * n >= lo:
            generic = df > self.max_df * n
        ok = (df >= lo) & ~generic
        return keys[starts[ok]], keys[starts[generic]]

    def _embed_phrases(self, phrases: list[str]) -> np.ndarray:
        """Row ids of ``phrases`` in the phrase store, embedding the unseen ones."""
        new = [p for p in dict.fromkeys(phrases) if p not in self._phrase_id]
        if new:
            emb = embed_texts(new, self.model, batch_size=256, max_seq_length=32, progress=False)
            need = self._n_phrases + len(new)
            if self._phrase_emb.shape[0] < need:
                cap = max(need, 2 * self._phrase_emb.shape[0], 1024)
                grown = np.zeros((cap, emb.shape[1]), dtype=np.float32)
                if self._n_phrases:
                    grown[: self._n_phrases] = self._phrase_emb[: self._n_phrases]
                self._phrase_emb = grown
            self._phrase_emb[self._n_phrases : need] = emb
            for k, p in enumerate(new):
                self._phrase_id[p] = self._n_phrases + k
            self._n_phrases = need
        return np.fromiter(
            (self._phrase_id[p] for p in phrases), dtype=np.int64, count=len(phrases)
        )

    def tag(
        self,
        texts: Sequence[str],
        *,
        doc_embeddings: np.ndarray | None = None,
        desc: str = "keyphrase tags",
    ) -> list[list[str]]:
        """Tags of each text (at most ``top_k`` phrases, best first).

        Parameters
        ----------
        texts : sequence of str
        doc_embeddings : numpy.ndarray, optional
            ``[len(texts), d]`` normalized embeddings of the texts by the same model (e.g.
            from :func:`~tritondiv.features.embed.embed_pool`); computed when omitted.
        desc : str
            The progress bar's label.
        """
        from tqdm.auto import tqdm  # type: ignore[import-untyped]

        texts = list(texts)
        n = len(texts)
        if doc_embeddings is not None:
            doc_embeddings = np.asarray(doc_embeddings, dtype=np.float32)
            if doc_embeddings.ndim != 2 or doc_embeddings.shape[0] != n:
                raise ValueError(
                    f"doc_embeddings has shape {doc_embeddings.shape}; expected ({n}, d) for {n} texts"
                )
        shared = self._shared_phrases(texts)
        out: list[list[str]] = []
        bar = tqdm(total=n, desc=desc, unit="text", disable=not self.progress)
        try:
            for s in range(0, n, self.batch_size):
                chunk = texts[s : s + self.batch_size]
                if doc_embeddings is None:
                    docs = embed_texts(
                        chunk, self.model, max_seq_length=self.max_seq_length, progress=False
                    )
                else:
                    docs = doc_embeddings[s : s + self.batch_size]
                out.extend(self._tag_batch(chunk, docs, shared))
                bar.update(len(chunk))
        finally:
            bar.close()
        return out

    def _tag_batch(
        self,
        texts: list[str],
        docs: np.ndarray,
        shared: tuple[np.ndarray, np.ndarray] | None,
    ) -> list[list[str]]:
        cands = [extract_candidates(t, self.ngram_range, self.max_words) for t in texts]
        b = len(texts)
        counts = np.fromiter((len(c) for c in cands), dtype=np.int64, count=b)
        flat = [p for c in cands for p in c]
        if not flat:
            return [[] for _ in range(b)]
        if shared is not None:
            # keep the pool-shared candidates; a text with none keeps its own non-generic
            # ones, and a text with only generic ones keeps those
            h = np.fromiter((hash(p) for p in flat), dtype=np.int64, count=len(flat))
            ok, generic = (_member(h, keys) for keys in shared)
            owner = np.repeat(np.arange(b), counts)
            has_ok = np.bincount(owner, weights=ok, minlength=b) > 0
            has_specific = np.bincount(owner, weights=~generic, minlength=b) > 0
            keep = ok | (~has_ok[owner] & (~generic | ~has_specific[owner]))
            flat = [p for p, k in zip(flat, keep.tolist(), strict=True) if k]
            counts = np.bincount(owner[keep], minlength=b).astype(np.int64)
        pid = self._embed_phrases(flat)
        text_idx = np.repeat(np.arange(b, dtype=np.int64), counts)
        pos = np.arange(pid.size, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
        emb = self._phrase_emb
        if docs.shape[1] != emb.shape[1]:
            raise ValueError(
                f"text embeddings have dimension {docs.shape[1]} but the phrase model gives "
                f"{emb.shape[1]}; use the same model for both"
            )
        # cosine of each (text, candidate) pair, summed in float32 over the dimension
        score = np.einsum("ij,ij->i", emb[pid], docs[text_idx], dtype=np.float32)
        # rank candidates within each text: best score first, earlier occurrence on ties
        order = np.lexsort((pos, -score, text_idx))
        starts = np.cumsum(counts) - counts
        rank = np.arange(order.size, dtype=np.int64) - np.repeat(starts, counts)
        m = self.nr_candidates if self.use_mmr and self.diversity > 0 else self.top_k
        top = order[rank < m]
        k_text, k_pid, k_score = text_idx[top], pid[top], score[top]
        k_cnt = np.minimum(counts, m)
        k_pos = np.arange(top.size) - np.repeat(np.cumsum(k_cnt) - k_cnt, k_cnt)
        if self.use_mmr and self.diversity > 0:
            sel = self._mmr(b, m, k_text, k_pos, k_pid, k_score)
        else:
            sel = np.full((b, m), -1, dtype=np.int64)
            sel[k_text, k_pos] = k_pid
        names = self._phrase_names()
        return [[names[j] for j in row if j >= 0] for row in sel.tolist()]

    def _phrase_names(self) -> list[str]:
        """Phrase strings by row id (rebuilt only when phrases were added)."""
        if len(self._names) != self._n_phrases:
            names = [""] * self._n_phrases
            for p, i in self._phrase_id.items():
                names[i] = p
            self._names = names
        return self._names

    def _mmr(
        self,
        b: int,
        m: int,
        k_text: np.ndarray,
        k_pos: np.ndarray,
        k_pid: np.ndarray,
        k_score: np.ndarray,
    ) -> np.ndarray:
        """Maximal marginal relevance, vectorized over the texts of a batch (padded [b, m])."""
        d = self._phrase_emb.shape[1]
        cand = np.full((b, m), -1, dtype=np.int64)
        cand[k_text, k_pos] = k_pid
        rel = np.zeros((b, m), dtype=np.float32)  # padding is masked by `valid`
        rel[k_text, k_pos] = k_score
        vec = np.zeros((b, m, d), dtype=np.float32)
        vec[k_text, k_pos] = self._phrase_emb[k_pid]
        sim = np.matmul(vec, vec.transpose(0, 2, 1))  # [b, m, m] phrase-phrase cosine
        lam = self.diversity
        valid = cand >= 0
        chosen = np.zeros((b, m), dtype=bool)
        max_sim = np.full((b, m), -1.0, dtype=np.float32)  # read only after a first pick
        picks = np.full((b, self.top_k), -1, dtype=np.int64)
        rows = np.arange(b)
        for step in range(min(self.top_k, m)):
            if step == 0:
                val = rel.copy()
            else:
                val = (1.0 - lam) * rel - lam * max_sim
            val[~valid | chosen] = -np.inf
            j = np.argmax(val, axis=1)  # first maximum: the better-ranked candidate on ties
            ok = np.isfinite(val[rows, j])
            picks[ok, step] = cand[rows[ok], j[ok]]
            chosen[rows[ok], j[ok]] = True
            max_sim[ok] = np.maximum(max_sim[ok], sim[rows[ok], j[ok]])
        return picks

    def tag_pool(self, pool: Any, component: str) -> list[list[str]]:
        """Tag one component of a pool, reusing its cached embeddings for the texts."""
        texts = component_texts(pool, component)
        docs = embed_pool(
            pool, component, self.model, max_seq_length=self.max_seq_length, progress=self.progress
        )
        return self.tag(texts, doc_embeddings=docs, desc=f"tag {component} (keyphrase)")
