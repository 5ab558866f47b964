"""Embeddings featurizer: against sentence-transformers directly, cache, precomputed checks,
and against the shared precomputed MiniLM embeddings on real data."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from tritondiv._io import cache_dir
from tritondiv.features import embed
from tritondiv.features.embed import embed_pool, embed_texts, load_embedder

TEXTS = [
    "Write a Python function that sorts a list of numbers.",
    "Translate 'I love cheese' into French.",
    "",
    "Résumé : une phrase en français avec des accents — and an em dash.",
    "What is the capital of Australia?",
    "What is the capital of Australia?",  # duplicate
    "word " * 400,  # longer than max_seq_length
]


class FakePool:
    """The Pool contract, minimally: component(), fingerprint, column(), len()."""

    def __init__(self, instructions: list[str], responses: list[str], fingerprint: str) -> None:
        self._c = {"instruction": instructions, "response": responses}
        self.fingerprint = fingerprint

    def component(self, name: str) -> list[str]:
        return list(self._c[name])

    def column(self, name: str) -> list:
        raise KeyError(name)

    def __len__(self) -> int:
        return len(self._c["instruction"])


class StubModel:
    """Just enough of a SentenceTransformer to record what embed_texts passes."""

    max_seq_length = 256

    def __init__(self) -> None:
        self.seen: dict = {}

    def get_embedding_dimension(self) -> int:
        return 3

    def encode(self, texts, **kw):
        self.seen = {
            "batch_size": kw["batch_size"],
            "normalize_embeddings": kw["normalize_embeddings"],
            "max_seq_length": self.max_seq_length,
        }
        return np.ones((len(texts), 3), dtype=np.float64)


@pytest.fixture(scope="module")
def model():
    return load_embedder()


def test_load_embedder_is_cached_and_local_only(model, tmp_path: Path) -> None:
    assert load_embedder() is model
    assert load_embedder(embed.default_model_path()) is model
    assert load_embedder(model) is model
    with pytest.raises(ValueError, match="not a local directory"):
        load_embedder("sentence-transformers/all-MiniLM-L6-v2")
    with pytest.raises(ValueError, match="not a local directory"):
        load_embedder(tmp_path / "missing")
    with pytest.raises(TypeError, match="local directory path"):
        load_embedder(42)


def test_embed_texts_matches_sentence_transformers(model) -> None:
    got = embed_texts(TEXTS, progress=False)
    assert got.dtype == np.float32 and got.shape == (len(TEXTS), 384) and got.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    old = model.max_seq_length
    model.max_seq_length = 128
    try:
        ref = model.encode(TEXTS, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    finally:
        model.max_seq_length = old
    np.testing.assert_allclose(got, ref, atol=1e-5)
    # duplicates embed identically; the max_seq_length setting was restored
    np.testing.assert_array_equal(got[4], got[5])
    assert model.max_seq_length == old


def test_embed_texts_deterministic_and_batch_independent() -> None:
    a = embed_texts(TEXTS, progress=False)
    b = embed_texts(TEXTS, progress=False)
    np.testing.assert_array_equal(a, b)
    c = embed_texts(TEXTS, batch_size=2, progress=False)
    np.testing.assert_allclose(a, c, atol=1e-5)
    one = embed_texts(TEXTS[:1], progress=False)
    np.testing.assert_allclose(one[0], a[0], atol=1e-5)


def test_embed_texts_options_and_errors() -> None:
    assert embed_texts([], progress=False).shape == (0, 384)
    # options reach the model (MiniLM normalizes inside, so use a stub to see them)
    stub = StubModel()
    out = embed_texts(
        ["a", "b"], stub, batch_size=7, max_seq_length=9, normalize=False, progress=False
    )
    assert out.dtype == np.float32 and out.shape == (2, 3)
    assert stub.seen == {"batch_size": 7, "normalize_embeddings": False, "max_seq_length": 9}
    assert stub.max_seq_length == 256
    short = embed_texts(TEXTS[-1:], max_seq_length=8, progress=False)
    full = embed_texts(TEXTS[-1:], progress=False)
    assert not np.allclose(short, full)
    with pytest.raises(TypeError, match="not one string"):
        embed_texts("one text", progress=False)
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        embed_texts(["ok", 3], progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        embed_texts(["ok"], batch_size=0, progress=False)


def test_embed_pool_caches_on_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = FakePool(TEXTS[:4], TEXTS[3:7], fingerprint="fp-cache-test")
    first = embed_pool(pool, "instruction", progress=False)
    files = sorted((cache_dir() / "embed").glob("instruction-*.npy"))
    assert files
    np.testing.assert_array_equal(first, embed_texts(TEXTS[:4], progress=False))

    def boom(*a, **k):
        raise AssertionError("cache miss: embed_texts was called")

    monkeypatch.setattr(embed, "embed_texts", boom)
    again = embed_pool(pool, "instruction", progress=False)
    np.testing.assert_array_equal(first, again)
    assert again.dtype == np.float32
    # another component, max_seq_length or pool is another key -> computed (here: boom)
    with pytest.raises(AssertionError, match="cache miss"):
        embed_pool(pool, "response", progress=False)
    with pytest.raises(AssertionError, match="cache miss"):
        embed_pool(pool, "instruction", max_seq_length=64, progress=False)
    with pytest.raises(AssertionError, match="cache miss"):
        embed_pool(FakePool(TEXTS[:4], TEXTS[:4], "other-fp"), "instruction", progress=False)
    with pytest.raises(ValueError, match="component must be one of"):
        embed_pool(pool, "both", progress=False)


def test_embed_pool_plain_list_and_no_cache() -> None:
    texts = ["alpha beta", "gamma"]
    a = embed_pool(texts, "response", cache=False, progress=False)
    np.testing.assert_array_equal(a, embed_texts(texts, progress=False))
    # a damaged cache entry is recomputed
    embed_pool(texts, "response", progress=False)
    (entry,) = [
        p for p in (cache_dir() / "embed").glob("response-*.npy") if np.load(p).shape[0] == 2
    ]
    entry.write_bytes(b"garbage")
    np.testing.assert_array_equal(embed_pool(texts, "response", progress=False), a)


def test_precomputed_checks(tmp_path: Path) -> None:
    pool = FakePool(["a", "b", "c"], ["x", "y", "z"], "fp-pre")
    good = np.array([[3, 4], [0, 2], [1, 0]], dtype=np.float16)
    p = tmp_path / "emb.npy"
    np.save(p, good)
    got = embed_pool(pool, "instruction", precomputed=p)
    assert got.dtype == np.float32 and got.shape == (3, 2)
    np.testing.assert_allclose(got, [[0.6, 0.8], [0, 1], [1, 0]], atol=1e-6)
    # float32 files too: not normalized, so normalized once into the cache; file untouched
    np.save(p, good.astype(np.float32))
    got = embed_pool(pool, "instruction", precomputed=p)
    np.testing.assert_allclose(got, [[0.6, 0.8], [0, 1], [1, 0]], atol=1e-6)
    assert not got.flags.writeable and Path(got.filename).parent == cache_dir() / "embed"
    assert np.load(p)[0, 0] == 3.0
    again = embed_pool(pool, "instruction", precomputed=p)  # the normalized copy is reused
    assert Path(again.filename) == Path(got.filename)
    mem = embed_pool(pool, "instruction", precomputed=p, cache=False)  # in memory
    np.testing.assert_array_equal(mem, got)
    assert not isinstance(mem, np.memmap)

    np.save(p, np.ones((4, 2), np.float32))
    with pytest.raises(ValueError, match=r"emb\.npy.*4 rows.*3 samples"):
        embed_pool(pool, "instruction", precomputed=p)
    bad = np.ones((3, 2), np.float32)
    bad[1, 0] = np.nan
    np.save(p, bad)
    with pytest.raises(ValueError, match=r"NaN or inf in 1 rows \(first: \[1\]\)"):
        embed_pool(pool, "instruction", precomputed=p)
    bad[1, 0] = np.inf
    np.save(p, bad.astype(np.float16))
    with pytest.raises(ValueError, match="NaN or inf"):
        embed_pool(pool, "instruction", precomputed=p)
    np.save(p, np.ones(3, np.float32))
    with pytest.raises(ValueError, match="2-D float16/float32"):
        embed_pool(pool, "instruction", precomputed=p)
    np.save(p, np.ones((3, 2), np.int32))
    with pytest.raises(ValueError, match="2-D float16/float32"):
        embed_pool(pool, "instruction", precomputed=p)
    with pytest.raises(ValueError, match="does not exist"):
        embed_pool(pool, "instruction", precomputed=tmp_path / "nope.npy")
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(ValueError, match=r"junk\.npy"):
        embed_pool(pool, "instruction", precomputed=tmp_path / "junk.npy")


def test_normalized_float32_file_is_mapped_not_copied(tmp_path: Path) -> None:
    from tritondiv.feature_store import FeatureOptions, Features
    from tritondiv.kernels import kmeans, knn_graph
    from tritondiv.kernels._common import to_float32
    from tritondiv.kernels.cpu import normalize_rows

    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    p = tmp_path / "unit.npy"
    np.save(p, x)
    pool = FakePool([f"t{i}" for i in range(40)], [f"r{i}" for i in range(40)], "fp-unit")
    got = embed_pool(pool, "response", precomputed=p)
    assert isinstance(got, np.memmap) and Path(got.filename) == p.resolve()
    assert not got.flags.writeable
    feats = Features(pool, FeatureOptions(embeddings_response=str(p)))
    X = feats.embeddings("response")
    base = X  # Features keeps a view of a mapping of the user's file, not a copy
    while not isinstance(base, np.memmap):
        base = base.base
    assert Path(base.filename) == p.resolve() and not X.flags.writeable
    # the kernels' entry checks and normalization keep the mapped rows
    xs = to_float32(X, "X")
    assert np.shares_memory(xs, X) and normalize_rows(xs) is xs
    np.testing.assert_array_equal(
        kmeans(X, 3, device="cpu").labels, kmeans(x, 3, device="cpu").labels
    )
    np.testing.assert_array_equal(
        knn_graph(X, 4, device="cpu").indices, knn_graph(x, 4, device="cpu").indices
    )


def _read_jsonl_gz(path: Path, indices: list[int]) -> list[dict]:
    want = set(indices)
    out: dict[int, dict] = {}
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i in want:
                out[i] = json.loads(line)
            if i >= max(indices):
                break
    return [out[i] for i in indices]


@pytest.mark.shared_data
def test_real_embeddings_match_precomputed(shared_data: Path) -> None:
    """64 T0 prompts and 16 Code Alpaca instructions vs the shared float16 MiniLM rows."""
    rows_tsv = (shared_data / "embeddings" / "rows.tsv").read_text().splitlines()[1:]
    row_of = {tuple(r.split("\t")): k for k, r in enumerate(rows_tsv)}
    t0_idx = list(range(0, 64 * 800, 800))
    t0 = _read_jsonl_gz(shared_data / "t0_50k.jsonl.gz", t0_idx)
    texts = [r["prompt"] for r in t0]
    rows = [row_of[("t0_50k.jsonl.gz", str(i))] for i in t0_idx]
    with gzip.open(shared_data / "codealpaca_2k.json.gz", "rt", encoding="utf-8") as fh:
        ca = json.load(fh)
    ca_idx = list(range(0, 16 * 120, 120))
    for i in ca_idx:
        r = ca[i]
        texts.append(r["instruction"] + ("\n" + r["input"] if r["input"] else ""))
        rows.append(row_of[("codealpaca_2k.json.gz", str(i))])
    assert any(ca[i]["input"] for i in ca_idx)
    ref = np.load(shared_data / "embeddings" / "minilm_instruction.f16.npy", mmap_mode="r")[rows]
    ref = ref.astype(np.float32)
    got = embed_texts(texts, progress=False)
    cos = np.sum(got * ref, axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() >= 0.99, (cos.min(), int(cos.argmin()))
    # precomputed file of the whole shared pool against a 64-sample pool: a clear row error
    pool = FakePool(texts[:64], texts[:64], "fp-real")
    with pytest.raises(ValueError, match=r"78806 rows but the pool has 64 samples"):
        embed_pool(
            pool,
            "instruction",
            precomputed=shared_data / "embeddings" / "minilm_instruction.f16.npy",
        )
