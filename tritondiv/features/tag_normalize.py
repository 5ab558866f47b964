"""Tag normalization (the meso level), after InsTag.

Raw tags from any tagger go through, in this order:

1. **String normalization**: lowercase, punctuation and ``_``/``-`` turned into spaces
   (``+`` and ``#`` kept, for ``c++``/``c#``), whitespace collapsed, then each word
   lemmatized as a noun (plural -> singular) by a small rule-based English lemmatizer
   (:func:`lemmatize_word`; InsTag lemmatizes with WordNet's noun default, which mostly does
   the same). Duplicates within a sample collapse.
2. **Rare tags dropped**: tags carried by fewer than ``min_count`` samples (InsTag's frequency
   filter, applied before merging, as there).
3. **Near-duplicates merged**: tags whose embeddings have cosine >= ``merge_threshold`` are
   joined (connected components of the threshold graph, i.e. union-find); each group is
   represented by its most frequent tag (ties: shorter, then alphabetical).
4. **Generic tags dropped**: tags whose document frequency (fraction of samples carrying
   them, after merging) exceeds ``max_df``.

The result is an :class:`~tritondiv.incidence.Incidence` whose labels are the tag strings,
type ids in alphabetical order of the labels, plus a :class:`TagReport`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from tritondiv.incidence import Incidence

__all__ = [
    "DEFAULT_MAX_DF",
    "DEFAULT_MERGE_THRESHOLD",
    "DEFAULT_MIN_COUNT",
    "TagReport",
    "lemmatize_word",
    "normalize_tag",
    "normalize_tags",
]

DEFAULT_MAX_DF = 0.2
DEFAULT_MIN_COUNT = 2
DEFAULT_MERGE_THRESHOLD = 0.9

_PUNCT = re.compile(r"[^\w\s+#]|_")
_SPACE = re.compile(r"\s+")

# plural -> singular for irregular nouns
_IRREGULAR = {
    "children": "child",
    "people": "person",
    "men": "man",
    "women": "woman",
    "mice": "mouse",
    "feet": "foot",
    "teeth": "tooth",
    "geese": "goose",
    "analyses": "analysis",
    "bases": "basis",
    "crises": "crisis",
    "diagnoses": "diagnosis",
    "hypotheses": "hypothesis",
    "theses": "thesis",
    "syntheses": "synthesis",
    "criteria": "criterion",
    "phenomena": "phenomenon",
    "indices": "index",
    "matrices": "matrix",
    "vertices": "vertex",
    "appendices": "appendix",
    "wives": "wife",
    "knives": "knife",
    "lives": "life",
    "leaves": "leaf",
    "wolves": "wolf",
    "halves": "half",
    "shelves": "shelf",
    "selves": "self",
    "thieves": "thief",
    "loaves": "loaf",
    "calves": "calf",
    "quizzes": "quiz",
    "potatoes": "potato",
    "tomatoes": "tomato",
    "heroes": "hero",
    "echoes": "echo",
    "vetoes": "veto",
}
# words ending in "s" that are not plurals (or whose plural is themselves)
_INVARIANT = frozenset(
    """news series species physics mathematics economics politics ethics linguistics
    athletics gymnastics genetics electronics semantics logistics statistics aerobics acoustics
    analytics robotics dynamics mechanics optics thermodynamics metaphysics phonetics
    analysis basis crisis diagnosis hypothesis thesis synthesis emphasis axis paralysis
    status virus corpus bonus campus census chaos lens plus minus focus radius genius
    apparatus cactus fungus stimulus syllabus nexus circus octopus surplus consensus
    bias gas bus yes this thus always perhaps across unless less was has does is its his
    whereas besides canvas atlas alias christmas texas kansas arkansas paris
    sales glasses pants scissors jeans clothes goods means headquarters""".split()
)
_IES_E = frozenset(
    "movies cookies zombies rookies calories smoothies selfies genies pies ties lies dies "
    "hippies goalies aussies brownies freebies newbies techies".split()
)
_ES_AFTER = ("ches", "shes", "sses", "xes", "zzes")


def lemmatize_word(word: str) -> str:
    """Singularize one lowercase English word (nouns); other words come back unchanged.

    Rules, in order: irregular plurals; invariant words; ``-ies`` -> ``-y`` (with an
    exception list); ``-ches/-shes/-sses/-xes/-zzes`` -> drop ``es``; ``-oes`` listed;
    otherwise a final ``s`` is dropped when the word has more than 3 letters and does not
    end in ``ss``, ``us``, ``is`` or ``'s``.
    """
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if len(word) <= 3 or word in _INVARIANT or not word.endswith("s") or not word.isalpha():
        return word
    if word.endswith("ies"):
        return word[:-1] if word in _IES_E else word[:-3] + "y"
    if word.endswith(_ES_AFTER):
        return word[:-2]
    if word.endswith(("ss", "us", "is")):
        return word
    return word[:-1]


def normalize_tag(tag: str, *, lemmatize: bool = True) -> str:
    """Lowercase, strip punctuation, collapse spaces and (optionally) lemmatize one tag."""
    s = _SPACE.sub(" ", _PUNCT.sub(" ", str(tag).lower())).strip()
    if lemmatize and s:
        s = " ".join(lemmatize_word(w) for w in s.split(" "))
    return s


@dataclass
class TagReport:
    """What :func:`normalize_tags` did.

    Attributes
    ----------
    n_samples : int
        Number of samples.
    raw_tags : int
        Distinct raw tag strings.
    normalized_tags : int
        Distinct tags after string normalization.
    kept_tags : int
        Distinct tags in the final incidence.
    dropped_generic : list of (str, int)
        Tags dropped as too generic, with their document frequency (samples), most frequent first.
    dropped_rare : int
        Distinct tags dropped as too rare (fewer than ``min_count`` samples).
    merged : list of (str, str)
        ``(variant, representative)`` pairs merged as near-duplicates.
    raw_tags_per_sample_mean : float
        Mean number of raw tags per sample.
    tags_per_sample_mean : float
        Mean number of normalized tags per sample (samples without tags count as 0).
    untagged : int
        Samples left without any tag.
    options : dict
        The thresholds used.
    """

    n_samples: int
    raw_tags: int
    normalized_tags: int
    kept_tags: int
    dropped_generic: list[tuple[str, int]] = field(default_factory=list)
    dropped_rare: int = 0
    merged: list[tuple[str, str]] = field(default_factory=list)
    raw_tags_per_sample_mean: float = 0.0
    tags_per_sample_mean: float = 0.0
    untagged: int = 0
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable dict."""
        d = asdict(self)
        d["dropped_generic"] = [list(p) for p in self.dropped_generic]
        d["merged"] = [list(p) for p in self.merged]
        return d

    def summary(self) -> str:
        """One line for logs."""
        return (
            f"{self.n_samples} samples: {self.raw_tags} raw tags -> {self.normalized_tags} normalized "
            f"-> {self.kept_tags} kept ({self.dropped_rare} rare, {len(self.dropped_generic)} generic "
            f"dropped, {len(self.merged)} merged); {self.tags_per_sample_mean:.2f} tags/sample, "
            f"{self.untagged} untagged"
        )


def _codes(rows: list[list[str]]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Flatten rows of strings into (row index, code) pairs (unique per row) and the vocab."""
    vocab: dict[str, int] = {}
    codes: list[int] = []
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    for r in rows:
        codes.extend(vocab.setdefault(t, len(vocab)) for t in r)
    row_idx = np.repeat(np.arange(len(rows), dtype=np.int64), lengths)
    code_arr = np.asarray(codes, dtype=np.int64)
    # unique (row, code) pairs via sort + diff
    if code_arr.size:
        key = _sorted_unique(row_idx * max(len(vocab), 1) + code_arr)
        row_idx, code_arr = np.divmod(key, max(len(vocab), 1))
    return row_idx, code_arr, list(vocab)


def _sorted_unique(a: np.ndarray) -> np.ndarray:
    """``np.unique`` by sort + diff (much faster than np.unique here on many values)."""
    a = np.sort(np.asarray(a, dtype=np.int64))
    if a.size:
        keep = np.ones(a.size, dtype=bool)
        keep[1:] = a[1:] != a[:-1]
        a = a[keep]
    return a


def _merge_groups(
    vocab: list[str], df: np.ndarray, embed_fn: Callable[[list[str]], np.ndarray], threshold: float
) -> np.ndarray:
    """Map each vocab index to the index of its group's representative."""
    from scipy.sparse import coo_matrix  # type: ignore[import-untyped]
    from scipy.sparse.csgraph import connected_components  # type: ignore[import-untyped]

    v = len(vocab)
    emb = np.asarray(embed_fn(list(vocab)), dtype=np.float32)
    if emb.ndim != 2 or emb.shape[0] != v:
        raise ValueError(f"embed_fn returned shape {emb.shape} for {v} tags; expected ({v}, d)")
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    emb = (emb / np.where(norms > 0, norms, 1.0)).astype(np.float32)
    rows_l: list[np.ndarray] = []
    cols_l: list[np.ndarray] = []
    block = 2048
    for s in range(0, v, block):
        sims = emb[s : s + block] @ emb[s:].T  # upper triangle blocks only
        i, j = np.nonzero(sims >= threshold)
        j = j + s
        i = i + s
        keep = j > i
        rows_l.append(i[keep])
        cols_l.append(j[keep])
    r = np.concatenate(rows_l) if rows_l else np.zeros(0, np.int64)
    c = np.concatenate(cols_l) if cols_l else np.zeros(0, np.int64)
    graph = coo_matrix((np.ones(r.size, dtype=np.int8), (r, c)), shape=(v, v)).tocsr()
    _, comp = connected_components(graph, directed=False)
    # representative: max df, then shortest, then alphabetical -> rank tags by that order
    lengths = np.fromiter((len(t) for t in vocab), dtype=np.int64, count=v)
    alpha = np.empty(v, dtype=np.int64)
    alpha[np.argsort(np.asarray(vocab, dtype=object), kind="stable")] = np.arange(v)
    order = np.lexsort((alpha, lengths, -df, comp))  # grouped by comp, best first
    first = np.ones(v, dtype=bool)
    first[1:] = comp[order][1:] != comp[order][:-1]
    rep_of_comp = np.empty(int(comp.max()) + 1 if v else 0, dtype=np.int64)
    rep_of_comp[comp[order][first]] = order[first]
    return rep_of_comp[comp]


def normalize_tags(
    tags_per_sample: Sequence[Sequence[str]],
    *,
    max_df: float | None = DEFAULT_MAX_DF,
    min_count: int = DEFAULT_MIN_COUNT,
    merge_threshold: float | None = DEFAULT_MERGE_THRESHOLD,
    embed_fn: Callable[[list[str]], np.ndarray] | None = None,
    lemmatize: bool = True,
) -> tuple[Incidence, TagReport]:
    """Normalize raw tags into a sample -> tag incidence (see the module docstring).

    Parameters
    ----------
    tags_per_sample : sequence of sequences of str
        Raw tags of each sample (from a tagger); an empty list means untagged.
    max_df : float or None
        Drop tags carried by more than this fraction of samples (default 0.2); ``None`` keeps them.
    min_count : int
        Drop tags carried by fewer than this many samples (default 2; 1 keeps every tag).
    merge_threshold : float or None
        Merge tags whose embeddings have cosine >= this (default 0.9); ``None`` skips merging.
    embed_fn : callable, optional
        ``list[str] -> float array [n, d]`` used for merging; default: the packaged
        all-MiniLM-L6-v2 via :func:`tritondiv.features.embed.embed_texts`.
    lemmatize : bool
        Singularize words with :func:`lemmatize_word` (default True).

    Returns
    -------
    (Incidence, TagReport)
        Incidence labels are the tag strings (``numpy`` str array), type ids in alphabetical
        order of the labels.
    """
    if isinstance(tags_per_sample, (str, bytes)):
        raise TypeError("tags_per_sample must be a list of lists of tag strings")
    if max_df is not None and not 0.0 < float(max_df) <= 1.0:
        raise ValueError(f"max_df must be a fraction in (0, 1] or None, got {max_df!r}")
    if int(min_count) < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count!r}")
    if merge_threshold is not None and not -1.0 <= float(merge_threshold) <= 1.0:
        raise ValueError(
            f"merge_threshold must be a cosine in [-1, 1] or None, got {merge_threshold!r}"
        )
    raw_rows: list[list[str]] = []
    for i, row in enumerate(tags_per_sample):
        if isinstance(row, (str, bytes)) or not all(isinstance(t, str) for t in row):
            raise TypeError(f"tags_per_sample[{i}] must be a list of strings, got {row!r:.80}")
        raw_rows.append(list(row))
    n = len(raw_rows)
    raw_vocab = {t for r in raw_rows for t in r}
    raw_mean = float(np.mean([len(set(r)) for r in raw_rows])) if n else 0.0

    # 1. string normalization (once per distinct raw tag)
    norm_of = {t: normalize_tag(t, lemmatize=lemmatize) for t in raw_vocab}
    rows = [[norm_of[t] for t in r if norm_of[t]] for r in raw_rows]
    row_idx, code, vocab = _codes(rows)
    v = len(vocab)
    df = np.bincount(code, minlength=v).astype(np.int64)

    # 2. rare tags
    alive = df >= int(min_count)
    dropped_rare = int(v - alive.sum())

    # 3. near-duplicate merge among the surviving tags
    rep = np.arange(v, dtype=np.int64)
    merged: list[tuple[str, str]] = []
    alive_idx = np.flatnonzero(alive)
    if merge_threshold is not None and alive_idx.size > 1:
        if embed_fn is None:
            from tritondiv.features.embed import embed_texts

            def embed_fn(xs: list[str]) -> np.ndarray:
                return embed_texts(xs, progress=False)

        sub_vocab = [vocab[k] for k in alive_idx]
        sub_rep = _merge_groups(sub_vocab, df[alive_idx], embed_fn, float(merge_threshold))
        rep[alive_idx] = alive_idx[sub_rep]
        moved = alive_idx[alive_idx != rep[alive_idx]]
        merged = sorted((vocab[k], vocab[rep[k]]) for k in moved)

    keep_pair = alive[code]
    row_idx, code = row_idx[keep_pair], rep[code[keep_pair]]
    # unique (row, representative) pairs
    key = _sorted_unique(row_idx * max(v, 1) + code)
    row_idx, code = np.divmod(key, max(v, 1))
    df2 = np.bincount(code, minlength=v).astype(np.int64)

    # 4. generic tags (document frequency after merging)
    generic = np.zeros(v, dtype=bool)
    if max_df is not None and n:
        generic = df2 > float(max_df) * n
    dropped_generic = sorted(
        ((vocab[k], int(df2[k])) for k in np.flatnonzero(generic)), key=lambda p: (-p[1], p[0])
    )
    keep_pair = ~generic[code]
    row_idx, code = row_idx[keep_pair], code[keep_pair]

    # final ids: alphabetical order of the kept labels
    kept = _sorted_unique(code)
    labels = sorted(vocab[k] for k in kept)
    new_id = np.full(v, -1, dtype=np.int64)
    lab_index = {lbl: i for i, lbl in enumerate(labels)}
    for k in kept:
        new_id[k] = lab_index[vocab[k]]
    types = new_id[code]
    order = np.lexsort((types, row_idx))
    row_idx, types = row_idx[order], types[order]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(row_idx, minlength=n), out=offsets[1:])
    label_arr = np.asarray(labels, dtype=str) if labels else np.zeros(0, dtype="<U1")
    inc = Incidence(offsets, types.astype(np.int32), len(labels), label_arr)
    lengths = np.diff(offsets)
    report = TagReport(
        n_samples=n,
        raw_tags=len(raw_vocab),
        normalized_tags=v,
        kept_tags=len(labels),
        dropped_generic=dropped_generic,
        dropped_rare=dropped_rare,
        merged=merged,
        raw_tags_per_sample_mean=raw_mean,
        tags_per_sample_mean=float(lengths.mean()) if n else 0.0,
        untagged=int((lengths == 0).sum()),
        options={
            "max_df": max_df,
            "min_count": int(min_count),
            "merge_threshold": merge_threshold,
            "lemmatize": bool(lemmatize),
        },
    )
    return inc, report
