"""Diversity metrics: self-BLEU against a plain-Python BLEU-4 (nltk's rules), the others on
hand-made cases and on real data."""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tritondiv.metrics import compression_ratio, self_bleu, word_ids

_WORD = re.compile(r"\w+|[^\w\s]")


def _ngrams(words: list[str], n: int) -> Counter:
    return Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def ref_sentence_bleu(
    hyp: list[str], refs: list[list[str]], max_n: int = 4, eps: float = 0.1
) -> float:
    """nltk.translate.bleu_score.sentence_bleu with SmoothingFunction().method1, uniform weights."""
    if not hyp:
        return 0.0
    log_p = 0.0
    for n in range(1, max_n + 1):
        h = _ngrams(hyp, n)
        best: Counter = Counter()
        for r in refs:
            for g, c in _ngrams(r, n).items():
                best[g] = max(best[g], c)
        clipped = sum(min(c, best[g]) for g, c in h.items())
        if n == 1 and clipped == 0:
            return 0.0
        denom = max(1, sum(h.values()))
        log_p += math.log((clipped if clipped > 0 else eps) / denom) / max_n
    r = min((abs(len(x) - len(hyp)), len(x)) for x in refs)[1]
    bp = 1.0 if len(hyp) > r else math.exp(1 - r / len(hyp))
    return bp * math.exp(log_p)


def ref_self_bleu(texts: list[str]) -> float:
    words = [_WORD.findall(t.lower()) for t in texts]
    return float(
        np.mean([ref_sentence_bleu(w, words[:i] + words[i + 1 :]) for i, w in enumerate(words)])
    )


def test_self_bleu_edge_cases() -> None:
    assert self_bleu([]) == (0.0, 0)
    assert self_bleu(["only one text here"]) == (0.0, 1)
    same = ["the cat sat on the mat today"] * 5
    assert self_bleu(same)[0] == pytest.approx(1.0)
    disjoint = ["alpha beta gamma delta", "one two three four", "red green blue yellow"]
    assert self_bleu(disjoint)[0] == 0.0
    assert self_bleu(["", "a b c d", "a b c d"])[0] == pytest.approx(2 / 3)


def test_self_bleu_matches_reference_hand_made() -> None:
    texts = [
        "The quick brown fox jumps over the lazy dog.",
        "A quick brown dog jumps over the lazy fox!",
        "the the the the the the",
        "Lazy dogs sleep; quick foxes jump.",
        "short",
        "The quick brown fox jumps over the lazy dog, again and again.",
    ]
    got, m = self_bleu(texts, sample=None)
    assert m == len(texts)
    assert got == pytest.approx(ref_self_bleu(texts), rel=1e-9, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from(["a", "b", "c", "d", "e", ".", "f"]), min_size=0, max_size=12).map(
            " ".join
        ),
        min_size=2,
        max_size=8,
    )
)
def test_self_bleu_matches_reference_property(texts: list[str]) -> None:
    got, _ = self_bleu(texts, sample=None)
    assert got == pytest.approx(ref_self_bleu(texts), rel=1e-9, abs=1e-12)


def test_self_bleu_sample_is_seeded_and_stated() -> None:
    texts = [f"sample number {i} says {'x ' * (i % 7)}" for i in range(300)]
    a = self_bleu(texts, sample=50, seed=3)
    b = self_bleu(texts, sample=50, seed=3)
    assert a == b and a[1] == 50
    assert self_bleu(texts, sample=None)[1] == 300


def test_word_ids_rows() -> None:
    off, ids = word_ids(["A b, a", "", "b"])
    assert off.tolist() == [0, 4, 4, 5]
    assert ids.tolist() == [0, 1, 2, 0, 1]


def test_compression_ratio_orders_redundancy() -> None:
    rng = np.random.default_rng(0)
    repetitive = ["the same sentence again"] * 200
    varied = ["".join(chr(97 + c) for c in rng.integers(0, 26, 30)) for _ in range(200)]
    assert compression_ratio(repetitive) > 5 * compression_ratio(varied)
    assert compression_ratio([]) == 0.0


def test_subset_tokens_and_component_metrics_on_real_data(shared_data) -> None:
    from tritondiv.metrics import component_metrics, subset_tokens
    from tritondiv.pool import load_pool
    from tritondiv.tokens import tokenize

    pool = load_pool(shared_data / "gsm8k_train.jsonl.gz", limit=300)
    texts = pool.component("response")
    tokens = tokenize(texts)
    idx = np.array([5, 0, 299, 5], dtype=np.int64)
    sub = subset_tokens(tokens, idx)
    offs = np.asarray(tokens.offsets)
    for r, i in enumerate(idx):
        assert np.array_equal(
            np.asarray(sub.ids)[sub.offsets[r] : sub.offsets[r + 1]],
            np.asarray(tokens.ids)[offs[i] : offs[i + 1]],
        )
    X = np.load(shared_data / "embeddings" / "minilm_response.f16.npy", mmap_mode="r")
    start = 78_806 - 7_473  # gsm8k is the last file of the embeddings
    emb = np.asarray(X[start : start + 300], dtype=np.float32)
    m = component_metrics(texts, tokens, emb, bleu_sample=100, seed=0)
    assert m["n"] == 300 and m["self_bleu_sample"] == 100
    assert 0 < m["distinct_1"] <= 1 and 0 < m["distinct_2"] <= 1
    assert m["token_entropy"] > 5
    lengths = np.diff(np.asarray(tokens.offsets))
    assert m["mean_length"] == pytest.approx(lengths.mean())
    # the exact mean cosine distance over ordered pairs i != j
    u = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    S = u.astype(np.float64) @ u.T.astype(np.float64)
    ref = (1 - S)[~np.eye(300, dtype=bool)].mean()
    assert m["mean_pairwise_distance"] == pytest.approx(ref, abs=1e-4)
    # gsm8k answers share a format: self-BLEU is clearly above 0, below 1
    assert 0.05 < m["self_bleu"] < 0.95
    assert m["compression_ratio"] > 1
