"""The memory-mapped token cache: the same CSR, statistics and incidences as the in-memory
reference on real data, atomic entries (a half-written one is never used, a damaged one is
rebuilt), block sizes that do not divide the pool, and a pool whose ids do not fit in the
memory a process is allowed (a child under RLIMIT_DATA)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tritondiv._io import cache_dir
from tritondiv.stats import band_incidence, token_counts, token_stats
from tritondiv.tokens import (
    TokenCSR,
    TokenWriter,
    _cache_key,
    _resolve,
    load_tokenizer,
    open_token_entry,
    tokenize,
    tokenize_pool,
    tokenizer_hash,
)

# The folder holding the tritondiv that this test imports (the installed one, with its
# compiled core), for child processes.
_PACKAGE_ROOT = str(Path(importlib.import_module("tritondiv").__file__ or "").resolve().parents[1])


REPO = Path(__file__).resolve().parents[1]


class FakePool:
    """What tokenize_pool uses of a Pool: ``fingerprint`` and ``component``."""

    def __init__(self, texts: dict, fingerprint: str) -> None:
        self.texts = texts
        self.fingerprint = fingerprint
        self.calls = 0

    def component(self, name: str):  # type: ignore[no-untyped-def]
        self.calls += 1
        return self.texts[name]


@pytest.fixture(scope="module")
def tok():  # type: ignore[no-untyped-def]
    return load_tokenizer()


def _entry(pool: FakePool, tokenizer, component: str = "response") -> Path:  # type: ignore[no-untyped-def]
    """The cache entry folder of one component of ``pool``."""
    key = _cache_key(pool.fingerprint, tokenizer_hash(_resolve(tokenizer, "t")), component, False)
    return cache_dir() / "tokens" / key


def _same_csr(a: TokenCSR, b: TokenCSR) -> None:
    assert a.vocab_size == b.vocab_size
    np.testing.assert_array_equal(a.offsets, b.offsets)
    np.testing.assert_array_equal(a.ids, b.ids)


def _same_stats(a: TokenCSR, b: TokenCSR, lo: int = 2, hi: int = 50) -> None:
    sa, sb = token_stats(a, lo=lo, hi=hi, ns=(1, 2, 3)), token_stats(b, lo=lo, hi=hi, ns=(1, 2, 3))
    assert sa.to_dict() == sb.to_dict()
    ia, ib = band_incidence(a, lo, hi), band_incidence(b, lo, hi)
    np.testing.assert_array_equal(ia.offsets, ib.offsets)
    np.testing.assert_array_equal(ia.types, ib.types)
    np.testing.assert_array_equal(ia.labels, ib.labels)
    ca, cb = token_counts(a), token_counts(b)
    for f in ("counts", "df", "lengths", "distinct"):
        np.testing.assert_array_equal(getattr(ca, f), getattr(cb, f))


def _mapped(csr: TokenCSR) -> bool:
    """The ids are a read-only view of a memory-mapped file, not a copy in memory."""
    base = csr.ids
    while base is not None and not isinstance(base, np.memmap):
        base = base.base
    return isinstance(base, np.memmap) and not csr.ids.flags.writeable


def test_examples_memmap_equals_in_memory(tok) -> None:  # type: ignore[no-untyped-def]
    from tritondiv.pool import load_pool

    pool = load_pool(REPO / "examples" / "data" / "gpteacher_roleplay_100.jsonl")
    for component in ("instruction", "response"):
        ref = tokenize(pool.component(component).to_pylist(), tok, progress=False)
        got = tokenize_pool(pool, component, tok, progress=False)
        assert _mapped(got) and not isinstance(ref.ids, np.memmap)
        _same_csr(got, ref)
        _same_stats(got, ref)
        hit = tokenize_pool(pool, component, tok, progress=False)  # the cache entry, mapped
        assert _mapped(hit)
        _same_csr(hit, ref)


@pytest.mark.shared_data
def test_real_slice_memmap_equals_in_memory(shared_data: Path, tok) -> None:  # type: ignore[no-untyped-def]
    from tritondiv.pool import load_pool

    pool = load_pool(shared_data / "gsm8k_train.jsonl.gz", limit=1500)
    ref = tokenize(pool.response.to_pylist(), tok, progress=False)
    # blocks of 97 texts: 1500 is no multiple, the last block is short
    got = tokenize_pool(pool, "response", tok, progress=False, batch_size=97)
    assert _mapped(got)
    _same_csr(got, ref)
    _same_stats(got, ref, lo=5, hi=300)


@pytest.mark.parametrize("batch_size", [1, 3, 7, 10, 11, 1000])
def test_block_sizes_that_do_not_divide_n(batch_size: int) -> None:
    texts = [f"w{i % 5} " * (i % 4) + "end" if i % 6 else "" for i in range(10)]
    pool = FakePool({"response": texts}, fingerprint=f"fp-blocks-{batch_size}")
    ref = tokenize(texts, "whitespace", progress=False)
    got = tokenize_pool(pool, "response", "whitespace", progress=False, batch_size=batch_size)
    assert _mapped(got)
    _same_csr(got, ref)
    # the whitespace vocabulary spans blocks: first-seen order over the whole component
    assert got.vocab_size == ref.vocab_size == len(set(" ".join(texts).split()))


def test_writer_checks_and_empty_entries(tmp_path: Path) -> None:
    with TokenWriter(tmp_path / "e") as w, pytest.raises(ValueError, match="lengths sum to 3"):
        w.append(np.array([1, 2]), np.zeros(2, np.int32))
    assert not (tmp_path / "e").exists() and not list(tmp_path.iterdir())  # aborted: nothing
    with TokenWriter(tmp_path / "e") as w:
        w.append(np.zeros(0, np.int64), np.zeros(0, np.int32))
        w.append(np.array([0, 0]), np.zeros(0, np.int32))
        csr = w.finish(7)
    assert csr.n_samples == 2 and csr.n_tokens == 0 and csr.vocab_size == 7
    _same_csr(open_token_entry(tmp_path / "e"), TokenCSR.from_lists([[], []], 7))
    pool = FakePool({"response": []}, fingerprint="fp-empty")
    assert tokenize_pool(pool, "response", "whitespace", progress=False).n_samples == 0


def test_interrupted_write_is_never_used(tok) -> None:  # type: ignore[no-untyped-def]
    texts = ["alpha beta gamma", "delta", "epsilon zeta"]
    pool = FakePool({"response": texts}, fingerprint="fp-interrupted")

    class Boom(RuntimeError):
        pass

    class Column(list):  # fails when the second block of texts is read
        def __getitem__(self, i):  # type: ignore[no-untyped-def]
            if isinstance(i, slice) and i.start:
                raise Boom("killed mid-write")
            return super().__getitem__(i)

    pool.component = lambda name: Column(texts)  # type: ignore[method-assign]
    with pytest.raises(Boom):
        tokenize_pool(pool, "response", tok, progress=False, batch_size=1)
    root = cache_dir() / "tokens"
    assert not _entry(pool, tok).exists()
    assert not [p for p in root.iterdir() if ".tmp-" in p.name]  # the temporary is removed

    # a writer killed without clean-up (os._exit in a child) leaves only a temporary folder
    code = textwrap.dedent(
        f"""
        import os, numpy as np
        from tritondiv.tokens import TokenWriter
        w = TokenWriter({str(root / "killed")!r})
        w.append(np.array([2]), np.array([1, 2], np.int32))
        os._exit(3)
        """
    )
    env = {**os.environ, "PYTHONPATH": _PACKAGE_ROOT}
    assert subprocess.run([sys.executable, "-c", code], env=env, cwd="/").returncode == 3
    assert not (root / "killed").exists()
    assert [p for p in root.iterdir() if p.name.startswith(".killed.tmp-")]

    fresh = FakePool({"response": texts}, fingerprint="fp-interrupted")
    csr = tokenize_pool(fresh, "response", tok, progress=False)
    assert fresh.calls == 1
    _same_csr(csr, tokenize(texts, tok, progress=False))


@pytest.mark.parametrize("damage", ["truncate-ids", "garbage-meta", "no-meta", "bad-offsets"])
def test_damaged_entry_is_rebuilt(tok, damage: str) -> None:  # type: ignore[no-untyped-def]
    texts = ["one two three", "four five", ""]
    pool = FakePool({"response": texts}, fingerprint=f"fp-damage-{damage}")
    ref = tokenize_pool(pool, "response", tok, progress=False)
    entry = _entry(pool, tok)
    assert (entry / "meta.json").exists() and pool.calls == 1
    if damage == "truncate-ids":
        with open(entry / "ids.npy", "r+b") as fh:
            fh.truncate(os.path.getsize(entry / "ids.npy") - 4)
    elif damage == "garbage-meta":
        (entry / "meta.json").write_text("{not json")
    elif damage == "no-meta":
        (entry / "meta.json").unlink()
    else:
        offsets = np.load(entry / "offsets.npy")
        offsets[1] = 99
        with open(entry / "offsets.npy", "r+b") as fh:
            fh.seek(128)
            fh.write(offsets.tobytes())
    del ref
    again = tokenize_pool(pool, "response", tok, progress=False)
    assert pool.calls == 2  # rebuilt
    _same_csr(again, tokenize(texts, tok, progress=False))
    assert _mapped(again) and (entry / "meta.json").exists()
    assert not [p for p in entry.parent.iterdir() if p.name.startswith(f".{entry.name}.")]


_CHILD = """
import json, resource, sys
import numpy as np
from tritondiv.stats import token_stats
from tritondiv.tokens import TokenCSR, open_token_entry

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
# start the core's threads first (their stacks are private memory)
token_stats(TokenCSR.from_lists([[1, 2, 3], [2]], 8), lo=1, hi=5)
limit = status("VmData") + int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
try:
    np.load(sys.argv[1] + "/ids.npy")  # the ids in memory: refused under this limit
    loaded = True
except MemoryError:
    loaded = False
st = token_stats(open_token_entry(sys.argv[1]), lo=10, hi=500, ns=(1, 2))
print(json.dumps({"loaded": loaded, "stats": st.to_dict()}))
"""


@pytest.mark.slow
def test_ids_larger_than_allowed_memory(tmp_path: Path) -> None:
    """400 MB of ids; a child may allocate only 1/4 of that on top of its imports, so it
    cannot hold the ids in memory (np.load fails there) yet computes the statistics on
    the mapped entry, equal to the in-memory reference."""
    rng = np.random.default_rng(7)
    n_tokens, vocab = 100_000_000, 4096
    entry = tmp_path / "big"
    done = 0
    with TokenWriter(entry) as w:
        while done < n_tokens:
            lengths = rng.integers(0, 400, size=50_000)
            lengths[-1] += max(0, min(n_tokens - done, 1 << 24) - int(lengths.sum()))
            total = min(int(lengths.sum()), n_tokens - done)
            ends = np.minimum(np.cumsum(lengths), total)
            lengths = np.diff(ends, prepend=0)
            w.append(lengths, rng.integers(0, vocab, size=total, dtype=np.int32))
            done += total
        w.finish(vocab)
    size = os.path.getsize(entry / "ids.npy")
    assert size > 4 * 10**8
    env = {**os.environ, "PYTHONPATH": _PACKAGE_ROOT, "OMP_NUM_THREADS": "2"}
    out = subprocess.run(
        # headroom: half the ids -- room for the statistics' own working memory (the
        # distinct-2 bitmap alone is up to 128 MiB), not for the ids themselves
        [sys.executable, "-c", _CHILD, str(entry), str(size // 2)],
        env=env,
        cwd="/",
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout)
    assert got["loaded"] is False  # the limit bites: the ids do not fit
    ref = TokenCSR(np.load(entry / "offsets.npy"), np.load(entry / "ids.npy"), vocab)
    assert got["stats"] == json.loads(json.dumps(token_stats(ref, ns=(1, 2)).to_dict()))
