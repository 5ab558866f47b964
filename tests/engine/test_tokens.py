"""Tokenization into a TokenCSR: padding/truncation off, the CSR layout, the on-disk cache."""

from __future__ import annotations

import numpy as np
import pytest

from tritondiv._io import cache_dir
from tritondiv.tokens import (
    TokenCSR,
    _default_tokenizer_path,
    load_tokenizer,
    tokenize,
    tokenize_pool,
    tokenizer_hash,
)


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer()


class FakePool:
    """The part of tritondiv.Pool that tokenize_pool uses, counting component() calls."""

    def __init__(self, texts, fingerprint="fp-1"):
        self.texts = texts
        self.fingerprint = fingerprint
        self.calls = 0

    def component(self, name):
        self.calls += 1
        return self.texts[name]


def test_no_truncation_no_padding(tok):
    from tokenizers import Tokenizer

    text = " ".join(f"word{i}" for i in range(300))
    raw = Tokenizer.from_file(str(_default_tokenizer_path()))
    assert len(raw.encode(text).ids) == 128  # the file truncates and pads to 128
    csr = tokenize([text, "hi"], tok, progress=False)
    assert csr.lengths()[0] > 300 and csr.lengths()[1] == 1
    raw.no_truncation()
    raw.no_padding()
    assert csr.row(0).tolist() == raw.encode(text, add_special_tokens=False).ids


def test_csr_matches_per_text_encoding(tok):
    texts = ["The cat sat.", "", "naïve café — déjà vu", "x", "  ", "a b c " * 50]
    csr = tokenize(texts, tok, batch_size=2, progress=False)
    assert csr.ids.dtype == np.int32 and csr.offsets.dtype == np.int64
    assert csr.n_samples == len(texts) and csr.vocab_size == tok.get_vocab_size(True)
    for i, t in enumerate(texts):
        assert csr.row(i).tolist() == tok.encode(t, add_special_tokens=False).ids
    with_special = tokenize(texts[:1], tok, add_special_tokens=True, progress=False)
    assert with_special.n_tokens == csr.lengths()[0] + 2  # [CLS] ... [SEP]


def test_empty_inputs(tok):
    csr = tokenize([], tok, progress=False)
    assert csr.n_samples == 0 and csr.n_tokens == 0 and csr.offsets.tolist() == [0]
    csr = tokenize(["", ""], tok, progress=False)
    assert csr.lengths().tolist() == [0, 0]


def test_bad_inputs(tok, tmp_path):
    with pytest.raises(TypeError, match="one string"):
        tokenize("a text", tok)
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        tokenize(["a", 3], tok, progress=False)
    with pytest.raises(FileNotFoundError, match=r"tokenizer\.json"):
        load_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a Hugging Face tokenizer"):
        load_tokenizer(tmp_path)
    with pytest.raises(ValueError, match="offsets"):
        TokenCSR(np.array([0, 3]), np.zeros(2, np.int32), 5)
    with pytest.raises(TypeError, match="integer"):
        TokenCSR(np.array([0, 1]), np.zeros(1, np.float32), 5)


def test_load_tokenizer_from_dir_and_file():
    path = _default_tokenizer_path()
    a, b = load_tokenizer(path), load_tokenizer(path.parent)
    assert tokenizer_hash(a) == tokenizer_hash(b) == tokenizer_hash(load_tokenizer())
    assert a.padding is None and a.truncation is None


def test_cache_hit_and_keys(tok, tmp_path):
    pool = FakePool(
        {"instruction": ["what is a cat", "hello"], "response": ["a cat is an animal", ""]}
    )
    first = tokenize_pool(pool, "response", tok, progress=False)
    assert pool.calls == 1
    again = tokenize_pool(pool, "response", tok, progress=False)
    assert pool.calls == 1  # served from the cache
    np.testing.assert_array_equal(first.offsets, again.offsets)
    np.testing.assert_array_equal(first.ids, again.ids)
    assert again.ids.dtype == np.int32 and again.vocab_size == first.vocab_size
    entries = lambda: sorted(p.name for p in (cache_dir() / "tokens").glob("*.npz"))  # noqa: E731
    n0 = len(entries())

    inst = tokenize_pool(pool, "instruction", tok, progress=False)  # other component
    assert pool.calls == 2 and len(entries()) == n0 + 1
    assert (
        inst.n_samples == 2
        and inst.row(1).tolist() == tok.encode("hello", add_special_tokens=False).ids
    )

    other = FakePool(pool.texts, fingerprint="fp-2")  # other pool
    tokenize_pool(other, "response", tok, progress=False)
    assert other.calls == 1 and len(entries()) == n0 + 2

    # another tokenizer (one added token changes its JSON, so its hash)
    tok2 = load_tokenizer()
    tok2.add_tokens(["catdog"])
    assert tokenizer_hash(tok2) != tokenizer_hash(tok)
    tokenize_pool(pool, "response", tok2, progress=False)
    assert pool.calls == 3 and len(entries()) == n0 + 3

    tokenize_pool(pool, "response", tok, progress=False, cache=False)  # cache off
    assert pool.calls == 4

    with pytest.raises(ValueError, match="component"):
        tokenize_pool(pool, "both", tok)


def test_damaged_cache_entry_is_rebuilt(tok):
    pool = FakePool({"response": ["one two three"]}, fingerprint="fp-damaged")
    tokenize_pool(pool, "response", tok, progress=False)
    for p in (cache_dir() / "tokens").glob("*.npz"):
        p.write_bytes(b"garbage")
    csr = tokenize_pool(pool, "response", tok, progress=False)
    assert pool.calls == 2 and csr.n_tokens == 3


@pytest.mark.shared_data
def test_real_pool_tokenizes(shared_data, tok):
    from tritondiv.pool import load_pool

    pool = load_pool(shared_data / "codealpaca_2k.json.gz", limit=500, allow_empty=True)
    csr = tokenize_pool(pool, "instruction", tok, progress=False)
    assert csr.n_samples == 500
    assert int(csr.ids.max()) < csr.vocab_size and int(csr.ids.min()) >= 0
    for i in (0, 250, 499):
        assert csr.row(i).tolist() == tok.encode(pool.instruction[i], add_special_tokens=False).ids
