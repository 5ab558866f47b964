"""Token statistics of a tokenized component (the micro level of the taxonomy).

Every function takes a :class:`~tritondiv.tokens.TokenCSR` and runs in the C++ core
(multi-threaded, GIL released): corpus counts and document frequency, the frequency bands
and the sample -> mid-band-type incidence (the micro strategy's types), distinct-n ratios
and the entropy of the token distribution.

Frequency thresholds
--------------------
``lo`` and ``hi`` bound the mid band: a token is a type when ``lo <= count <= hi``, with
``count`` its occurrences over the whole component (the paper: 10 and 500 on a 117k-sample
pool). Each threshold is either an absolute count (an ``int``, or a string of digits such
as ``"500"``) or a count *relative to the pool size*: a string ending in ``x``, the number
of samples it multiplies. ``"0.001x"`` on a pool of 20,000 samples means 20 occurrences.
The paper's 10 and 500 at 117,000 samples are about ``"8.5e-5x"`` and ``"4.27e-3x"``.
A relative ``lo`` rounds up and a relative ``hi`` rounds down (the band never widens), and
``lo`` is at least 1.

Distinct-n keys
---------------
n-grams never cross a sample boundary. For ``n <= 2`` the ids are packed into 64 bits
exactly, so distinct-1 and distinct-2 are exact. For ``n = 3, 4`` each n-gram is hashed to
64 bits: with ``m`` distinct n-grams the expected number of colliding pairs is
``m (m - 1) / 2**65 ≈ m**2 / 2**65`` (about 0.03 for a billion distinct n-grams), and a
collision can only lower the count by one.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from tritondiv.incidence import Incidence
from tritondiv.tokens import TokenCSR

__all__ = [
    "TokenCounts",
    "TokenStats",
    "band_incidence",
    "distinct_n",
    "distinct_n_per_sample",
    "parse_band_value",
    "resolve_band",
    "resolve_threshold",
    "token_counts",
    "token_entropy",
    "token_stats",
]

Threshold = int | str

_RELATIVE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*[xX]\s*$")


def _core() -> Any:
    from tritondiv._runtime import _core as core

    return core


def _check_tokens(tokens: Any, where: str) -> TokenCSR:
    if not isinstance(tokens, TokenCSR):
        raise TypeError(
            f"{where}: expected a TokenCSR (from tritondiv.tokenize), got {type(tokens).__name__}"
        )
    return tokens


def resolve_threshold(value: Threshold, n_samples: int, *, upper: bool = False) -> int:
    """Turn a band threshold into an occurrence count.

    Parameters
    ----------
    value : int or str
        An absolute count (``10``, ``"10"``) or a count relative to the pool size
        (``"0.0001x"``: that fraction times ``n_samples``).
    n_samples : int
        Samples in the pool component.
    upper : bool, default False
        Round a relative value down (for ``hi``) instead of up (for ``lo``).

    Returns
    -------
    int
        The absolute count (at least 1 for ``lo``).
    """
    if isinstance(value, bool):
        raise TypeError(f"threshold must be an int or a string like '0.001x', got {value!r}")
    if isinstance(value, (int, np.integer)):
        count = int(value)
    elif isinstance(value, str):
        text = value.strip()
        m = _RELATIVE.match(text)
        if m:
            scaled = float(m.group(1)) * n_samples
            count = math.floor(scaled + 1e-9) if upper else math.ceil(scaled - 1e-9)
        elif text.isdigit():
            count = int(text)
        else:
            raise ValueError(
                f"threshold {value!r}: expected an occurrence count such as '10' or a count "
                "relative to the pool size such as '0.0001x'"
            )
    else:
        raise TypeError(
            f"threshold must be an int or a string like '0.001x', got {type(value).__name__}"
        )
    if count < 0:
        raise ValueError(f"threshold {value!r} must be >= 0")
    return count if upper else max(count, 1)


def parse_band_value(value: Threshold) -> Threshold:
    """Check a band threshold's syntax, without a pool: return it normalized.

    A count (``10``, ``"10"``) comes back as an ``int``; a count relative to the pool
    size (``"0.0001x"``: that fraction times the number of samples) as its stripped
    string. Anything else raises ``ValueError`` (``TypeError`` for a non-int, non-str).
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, str)):
        raise TypeError(
            f"band threshold {value!r}: expected an int or a string like '10' or '0.0001x', "
            f"got {type(value).__name__}"
        )
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text)
        if _RELATIVE.match(text):
            return text
        raise ValueError(
            f"band threshold {value!r}: pass an occurrence count (e.g. 10) or a count relative "
            "to the pool size such as 0.0001x"
        )
    if int(value) < 0:
        raise ValueError(f"band threshold {value!r}: an occurrence count must be >= 0")
    return int(value)


def resolve_band(lo: Threshold, hi: Threshold, n_samples: int) -> tuple[int, int]:
    """The band ``(lo, hi)`` as occurrence counts for a pool of ``n_samples`` samples.

    The one band resolver (``tritondiv.families`` re-exports it). Counts are used as
    they are; ``"Fx"`` is ``F * n_samples`` (``lo`` rounded up, ``hi`` rounded down, see
    :func:`resolve_threshold`). An empty band raises ``ValueError`` naming the pool size.
    """
    lo_v, hi_v = parse_band_value(lo), parse_band_value(hi)
    lo_c = resolve_threshold(lo_v, n_samples)
    hi_c = resolve_threshold(hi_v, n_samples, upper=True)
    if hi_c < lo_c:
        raise ValueError(
            f"frequency band is empty: lo={lo!r} -> {lo_c} occurrences is above hi={hi!r} -> "
            f"{hi_c} for a pool of {n_samples:,} samples; choose hi >= lo"
        )
    return lo_c, hi_c


@dataclass(frozen=True)
class TokenCounts:
    """Corpus counts of a :class:`TokenCSR`.

    Attributes
    ----------
    counts : numpy.ndarray
        ``int64[vocab_size]`` occurrences of each token id.
    df : numpy.ndarray
        ``int64[vocab_size]`` number of samples holding the token.
    lengths : numpy.ndarray
        ``int64[n_samples]`` tokens per sample.
    distinct : numpy.ndarray
        ``int32[n_samples]`` distinct token ids per sample.
    """

    counts: np.ndarray
    df: np.ndarray
    lengths: np.ndarray
    distinct: np.ndarray


def token_counts(tokens: TokenCSR) -> TokenCounts:
    """Count occurrences and document frequency per token id, lengths and distinct ids per sample.

    Parameters
    ----------
    tokens : TokenCSR

    Returns
    -------
    TokenCounts
    """
    t = _check_tokens(tokens, "token_counts")
    counts, df, lengths, distinct = _core().token_counts(t.offsets, t.ids, t.vocab_size)
    return TokenCounts(counts, df, lengths, distinct)


def band_incidence(
    tokens: TokenCSR,
    lo: Threshold = 10,
    hi: Threshold = 500,
    *,
    counts: np.ndarray | None = None,
) -> Incidence:
    """The sample -> mid-band-type incidence (the micro strategy's types).

    Parameters
    ----------
    tokens : TokenCSR
    lo, hi : int or str, default 10 and 500
        Band bounds in occurrences (inclusive), absolute or relative (``"0.0001x"``; see the
        module documentation).
    counts : numpy.ndarray, optional
        ``token_counts(tokens).counts`` when already computed.

    Returns
    -------
    Incidence
        Types ``0..B-1`` are the mid-band token ids in increasing order; ``labels`` holds
        those token ids (``int32[B]``). Each row is sorted and duplicate-free.
    """
    t = _check_tokens(tokens, "band_incidence")
    lo_c, hi_c = resolve_band(lo, hi, t.n_samples)
    if counts is None:
        counts = token_counts(t).counts
    counts = np.ascontiguousarray(counts, dtype=np.int64)
    offsets, types, band = _core().band_incidence(
        t.offsets, t.ids, t.vocab_size, counts, lo_c, hi_c
    )
    return Incidence(offsets, types, int(band.size), labels=band)


def distinct_n(tokens: TokenCSR, n: int = 2) -> float:
    """Distinct-n over the whole set: distinct n-grams / total n-grams.

    Parameters
    ----------
    tokens : TokenCSR
    n : int, default 2
        1 to 4. n-grams stay within a sample; exact for ``n <= 2``, 64-bit hashed above
        (collision bound in the module documentation).

    Returns
    -------
    float
        The ratio, or ``nan`` when there is no n-gram at all.
    """
    t = _check_tokens(tokens, "distinct_n")
    n = _check_n(n)
    distinct, total = _core().distinct_ngrams(t.offsets, t.ids, t.vocab_size, n)
    return float(distinct) / total if total else math.nan


def distinct_n_per_sample(tokens: TokenCSR, n: int = 2) -> np.ndarray:
    """Distinct-n of each sample: distinct n-grams / n-grams within the sample.

    Parameters
    ----------
    tokens : TokenCSR
    n : int, default 2
        1 to 4.

    Returns
    -------
    numpy.ndarray
        ``float64[n_samples]``; ``nan`` for samples shorter than ``n`` tokens.
    """
    t = _check_tokens(tokens, "distinct_n_per_sample")
    n = _check_n(n)
    distinct = _core().distinct_ngrams_per_sample(t.offsets, t.ids, t.vocab_size, n)
    total = np.maximum(t.lengths() - (n - 1), 0)
    out = np.full(t.n_samples, np.nan)
    np.divide(distinct, total, out=out, where=total > 0)
    return out


def _check_n(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= int(n) <= 4:
        raise ValueError(f"n must be an int in 1..4, got {n!r}")
    return int(n)


def token_entropy(tokens: TokenCSR | np.ndarray, *, unit: str = "nats") -> float:
    """Shannon entropy of the token distribution (occurrence counts / total).

    Parameters
    ----------
    tokens : TokenCSR or numpy.ndarray
        Tokens, or their occurrence counts per id.
    unit : {"nats", "bits"}, default "nats"
        Natural logarithm (nats) or base 2 (bits).

    Returns
    -------
    float
        0.0 when there is no token.
    """
    if unit not in ("nats", "bits"):
        raise ValueError(f"unit must be 'nats' or 'bits', got {unit!r}")
    if isinstance(tokens, TokenCSR):
        counts = token_counts(tokens).counts
    elif isinstance(tokens, np.ndarray):
        counts = np.ascontiguousarray(tokens, dtype=np.int64)
    else:
        raise TypeError(
            f"token_entropy: expected a TokenCSR or counts, got {type(tokens).__name__}"
        )
    h = float(_core().entropy_nats(counts))
    return h / math.log(2) if unit == "bits" else h


@dataclass(frozen=True)
class TokenStats:
    """Summary statistics of one tokenized component (what ``tritondiv stats`` prints).

    Attributes
    ----------
    n_samples, n_tokens, vocab_size, vocab_used : int
        Samples, tokens, tokenizer vocabulary, token ids seen at least once.
    lo, hi : int
        The band bounds used, in occurrences.
    n_below, n_mid, n_above : int
        Used token ids with ``count < lo``, ``lo <= count <= hi``, ``count > hi``.
    mid_tokens : int
        Occurrences falling in the mid band.
    mean_mid_types : float
        Mean number of distinct mid-band types per sample.
    samples_without_types : int
        Samples carrying no mid-band type.
    distinct : dict[int, float]
        Distinct-n over the whole set for each requested n.
    entropy_nats, entropy_bits : float
        Entropy of the token distribution.
    mean_length, median_length, max_length : float, float, int
        Tokens per sample.
    incidence : Incidence or None
        The sample -> mid-band-type incidence (not part of :meth:`to_dict`).
    """

    n_samples: int
    n_tokens: int
    vocab_size: int
    vocab_used: int
    lo: int
    hi: int
    n_below: int
    n_mid: int
    n_above: int
    mid_tokens: int
    mean_mid_types: float
    samples_without_types: int
    distinct: dict[int, float]
    entropy_nats: float
    entropy_bits: float
    mean_length: float
    median_length: float
    max_length: int
    incidence: Incidence | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (NaN becomes None; the incidence is left out)."""
        d = asdict(self)
        d.pop("incidence", None)
        d["distinct"] = {f"distinct_{k}": _finite(v) for k, v in self.distinct.items()}
        return {k: _finite(v) if isinstance(v, float) else v for k, v in d.items()}


def _finite(v: float) -> float | None:
    return None if math.isnan(v) else float(v)


def token_stats(
    tokens: TokenCSR,
    *,
    lo: Threshold = 10,
    hi: Threshold = 500,
    ns: tuple[int, ...] = (1, 2),
) -> TokenStats:
    """Compute every summary statistic of a tokenized component.

    Parameters
    ----------
    tokens : TokenCSR
    lo, hi : int or str, default 10 and 500
        Band bounds (absolute or relative, see the module documentation).
    ns : tuple of int, default (1, 2)
        Orders of the distinct-n ratios (each 1..4).

    Returns
    -------
    TokenStats
    """
    t = _check_tokens(tokens, "token_stats")
    core = _core()
    lo_c, hi_c = resolve_band(lo, hi, t.n_samples)
    ns = tuple(_check_n(n) for n in ns)
    counts, _df, lengths, _distinct = core.token_counts(t.offsets, t.ids, t.vocab_size)
    offsets, types, band = core.band_incidence(t.offsets, t.ids, t.vocab_size, counts, lo_c, hi_c)
    inc = Incidence(offsets, types, int(band.size), labels=band)
    used = counts > 0
    distinct: dict[int, float] = {}
    for n in ns:
        if n == 1:
            d, total = int(used.sum()), t.n_tokens
        else:
            d, total = core.distinct_ngrams(t.offsets, t.ids, t.vocab_size, n, counts)
        distinct[n] = float(d) / total if total else math.nan
    h = float(core.entropy_nats(counts))
    row_types = inc.row_lengths()
    n_samples = t.n_samples
    return TokenStats(
        n_samples=n_samples,
        n_tokens=t.n_tokens,
        vocab_size=t.vocab_size,
        vocab_used=int(used.sum()),
        lo=lo_c,
        hi=hi_c,
        n_below=int((used & (counts < lo_c)).sum()),
        n_mid=int(band.size),
        n_above=int((counts > hi_c).sum()),
        mid_tokens=int(counts[band].sum()),
        mean_mid_types=float(row_types.mean()) if n_samples else math.nan,
        samples_without_types=int((row_types == 0).sum()),
        distinct=distinct,
        entropy_nats=h,
        entropy_bits=h / math.log(2),
        mean_length=float(lengths.mean()) if n_samples else math.nan,
        median_length=float(np.median(lengths)) if n_samples else math.nan,
        max_length=int(lengths.max()) if n_samples else 0,
        incidence=inc,
    )
