"""Pairwise judges of an SFT experiment: the hook and an offline example.

A judge is ``judge(instructions, candidates, baselines, references)`` returning one value
per sample in ``[0, 1]`` (1: the candidate wins, 0.5: a tie, 0: it loses);
``tritondiv experiment --judge module:function`` imports one (:func:`load_judge`).
:func:`reference_f1_judge` is an offline stand-in for an LLM judge.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence

__all__ = ["Judge", "load_judge", "reference_f1_judge"]

Judge = Callable[[Sequence[str], Sequence[str], Sequence[str], Sequence[str]], Sequence[float]]


def load_judge(spec: str) -> Judge:
    """Import a judge from ``"package.module:function"``."""
    mod, sep, fn = spec.partition(":")
    if not sep or not mod or not fn:
        raise ValueError(f"judge must look like 'package.module:function'; got {spec!r}")
    try:
        obj = getattr(importlib.import_module(mod), fn)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot import judge {spec!r}: {exc}") from exc
    if not callable(obj):
        raise TypeError(f"judge {spec!r} is not callable")
    return obj


def _unigram_f1(a: str, b: str) -> float:
    from collections import Counter

    ta, tb = a.lower().split(), b.lower().split()
    if not ta or not tb:
        return float(ta == tb)
    common = sum((Counter(ta) & Counter(tb)).values())
    if common == 0:
        return 0.0
    p, r = common / len(ta), common / len(tb)
    return 2 * p * r / (p + r)


def reference_f1_judge(
    instructions: Sequence[str],
    candidates: Sequence[str],
    baselines: Sequence[str],
    references: Sequence[str],
) -> list[float]:
    """Offline example judge: the answer with the higher unigram F1 against the reference
    wins (1), the lower loses (0), equal is a tie (0.5). A stand-in for an LLM judge."""
    out = []
    for c, b, r in zip(candidates, baselines, references, strict=True):
        fc, fb = _unigram_f1(c, r), _unigram_f1(b, r)
        out.append(1.0 if fc > fb else 0.0 if fc < fb else 0.5)
    return out
