"""Pairwise judges of an SFT experiment: the hook, a local LM judge, the LC win rate.

A judge is ``judge(instructions, candidates, baselines, references)`` returning one value
per sample in ``[0, 1]`` (1: the candidate wins, 0.5: a tie, 0: it loses);
``tritondiv experiment --judge module:function`` imports one (:func:`load_judge`).

- :class:`LMJudge`: a local transformers causal LM shown the instruction and both answers
  **in both orders** (position-swapped); in each order its preference is the probability
  of the label of the candidate's position ("A" or "B") over the other label at the
  answer position. The candidate wins when both orders prefer it, loses when both prefer
  the baseline, and ties otherwise (a position-inconsistent or indifferent judge).
- :func:`length_controlled_win_rate`: AlpacaEval 2.0's length control -- a logistic
  regression of the preference on ``tanh(length difference / its standard deviation)``;
  the LC win rate is the predicted win probability at zero length difference.
- :func:`reference_f1_judge`: an offline stand-in for an LLM judge (no model).
"""

from __future__ import annotations

import importlib
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "JUDGE_TEMPLATE",
    "Judge",
    "LMJudge",
    "PairwiseResult",
    "length_controlled_win_rate",
    "load_judge",
    "reference_f1_judge",
    "win_tie_loss",
]

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


JUDGE_TEMPLATE = (
    "Compare two responses to the instruction and say which one is better.\n\n"
    "### Instruction:\n{instruction}\n\n"
    "### Response A:\n{a}\n\n"
    "### Response B:\n{b}\n\n"
    "### Which response is better, A or B?\n"
)


@dataclass
class PairwiseResult:
    """Per sample: ``p_first`` the judge's preference for the candidate shown as A,
    ``p_second`` shown as B, ``preference`` their mean, ``verdict`` 1 / 0.5 / 0
    (win / tie / loss)."""

    p_first: np.ndarray
    p_second: np.ndarray
    preference: np.ndarray
    verdict: np.ndarray

    def counts(self) -> dict[str, int]:
        return win_tie_loss(self.verdict)


def win_tie_loss(verdicts: Sequence[float] | np.ndarray) -> dict[str, int]:
    """``{"win", "tie", "loss"}`` counts of verdicts 1 / 0.5 / 0."""
    v = np.asarray(verdicts, dtype=np.float64)
    return {
        "win": int((v == 1.0).sum()),
        "tie": int((v == 0.5).sum()),
        "loss": int((v == 0.0).sum()),
    }


def _verdicts(p_first: np.ndarray, p_second: np.ndarray) -> np.ndarray:
    win = (p_first > 0.5) & (p_second > 0.5)
    loss = (p_first < 0.5) & (p_second < 0.5)
    return np.where(win, 1.0, np.where(loss, 0.0, 0.5))


class LMJudge:
    """A pairwise judge on a local transformers causal LM (see the module docstring).

    Parameters
    ----------
    model : path or (model, tokenizer)
        A local model folder (loaded offline) or an already loaded pair.
    template : str
        The judge prompt, with ``{instruction}``, ``{a}`` and ``{b}``; with a tokenizer
        chat template it is the user turn (then the generation prompt follows).
    labels : (str, str)
        The two answer labels; the prompt is followed by their common token prefix, and
        the judge's preference is the softmax over their first differing tokens.
    batch_size, max_length : int
        Prompts per forward pass; longer prompts keep their last ``max_length`` tokens.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | tuple[Any, Any],
        *,
        template: str = JUDGE_TEMPLATE,
        labels: tuple[str, str] | None = None,
        batch_size: int = 8,
        max_length: int = 2048,
        use_chat_template: bool | None = None,
    ) -> None:
        if isinstance(model, tuple):
            self.model, self.tokenizer = model
            self.name = str(getattr(self.model, "name_or_path", "model"))
        else:
            from tritondiv.sft.train import load_model

            self.model, self.tokenizer = load_model(model)
            self.name = str(Path(model))
            import torch

            if torch.cuda.is_available():
                self.model.to("cuda")
        for field in ("{instruction}", "{a}", "{b}"):
            if field not in template:
                raise ValueError(f"judge template lacks {field}")
        if batch_size < 1 or max_length < 8:
            raise ValueError("batch_size must be >= 1 and max_length >= 8")
        self.template = template
        chat = bool(getattr(self.tokenizer, "chat_template", None))
        self.chat = chat if use_chat_template is None else bool(use_chat_template and chat)
        self.labels = labels or (("A", "B") if self.chat else ("Answer: A", "Answer: B"))
        self.batch_size = batch_size
        self.max_length = max_length
        ea = self.tokenizer(self.labels[0], add_special_tokens=False)["input_ids"]
        eb = self.tokenizer(self.labels[1], add_special_tokens=False)["input_ids"]
        k = 0
        while k < min(len(ea), len(eb)) and ea[k] == eb[k]:
            k += 1
        if k == len(ea) or k == len(eb):
            raise ValueError(f"judge labels {self.labels} do not differ in a token")
        self._prefix = list(ea[:k])
        self._ids = (int(ea[k]), int(eb[k]))
        self.__name__ = f"LMJudge({self.name})"

    def _prompt_ids(self, instruction: str, a: str, b: str) -> list[int]:
        text = self.template.format(instruction=instruction, a=a, b=b)
        if self.chat:
            text = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
            )
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        else:
            ids = self.tokenizer(text)["input_ids"]
        ids = [*ids, *self._prefix]
        return ids[-self.max_length :]

    def prob_a(self, instructions: Sequence[str], a: Sequence[str], b: Sequence[str]) -> np.ndarray:
        """The judge's probability that A is the better answer, per sample (the softmax over
        the two label tokens at the answer position)."""
        import torch

        if not (len(instructions) == len(a) == len(b)):
            raise ValueError(f"{len(instructions)} instructions, {len(a)} and {len(b)} answers")
        prompts = [self._prompt_ids(i, x, y) for i, x, y in zip(instructions, a, b, strict=True)]
        device = next(self.model.parameters()).device
        pad = self.tokenizer.pad_token_id
        pad = 0 if pad is None else int(pad)
        out = np.empty(len(prompts), dtype=np.float64)
        was_training = self.model.training
        self.model.eval()
        try:
            for s in range(0, len(prompts), self.batch_size):
                chunk = prompts[s : s + self.batch_size]
                width = max(len(p) for p in chunk)
                ids = torch.full((len(chunk), width), pad, dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.long)
                for r, p in enumerate(chunk):  # left padding: the answer position is last
                    ids[r, width - len(p) :] = torch.tensor(p, dtype=torch.long)
                    mask[r, width - len(p) :] = 1
                pos = (mask.cumsum(1) - 1).clamp(min=0)
                with torch.no_grad():
                    logits = self.model(
                        input_ids=ids.to(device),
                        attention_mask=mask.to(device),
                        position_ids=pos.to(device),
                    ).logits[:, -1, :]
                two = logits[:, list(self._ids)].double().softmax(-1)[:, 0]
                out[s : s + len(chunk)] = two.cpu().numpy()
        finally:
            self.model.train(was_training)
        return out

    def compare(
        self,
        instructions: Sequence[str],
        candidates: Sequence[str],
        baselines: Sequence[str],
    ) -> PairwiseResult:
        """Both orders: the candidate as A (``p_first``) and as B (``p_second``)."""
        p_first = self.prob_a(instructions, candidates, baselines)
        p_second = 1.0 - self.prob_a(instructions, baselines, candidates)
        return PairwiseResult(
            p_first=p_first,
            p_second=p_second,
            preference=(p_first + p_second) / 2.0,
            verdict=_verdicts(p_first, p_second),
        )

    def __call__(
        self,
        instructions: Sequence[str],
        candidates: Sequence[str],
        baselines: Sequence[str],
        references: Sequence[str] | None = None,
    ) -> list[float]:
        """The judge hook: one verdict (1 / 0.5 / 0) per sample."""
        return [float(v) for v in self.compare(instructions, candidates, baselines).verdict]


def length_controlled_win_rate(
    preferences: Sequence[float] | np.ndarray,
    candidate_lengths: Sequence[float] | np.ndarray,
    baseline_lengths: Sequence[float] | np.ndarray,
    *,
    l2: float = 1e-2,
    max_iter: int = 100,
) -> dict[str, Any]:
    """AlpacaEval 2.0's length-controlled win rate.

    A logistic regression (soft labels: ``preferences`` in ``[0, 1]``, e.g. verdicts
    1 / 0.5 / 0) ``P(win) = sigmoid(θ0 + θ1 · tanh(Δ / sd(Δ)))`` with ``Δ`` the length
    difference (candidate minus baseline, in characters when given texts' lengths), fit by
    Newton's method with an ``l2`` penalty ``l2 · θ1² / 2`` on the length coefficient only
    (it keeps θ1 finite when the lengths separate wins from losses). The LC win rate is
    ``sigmoid(θ0)``: the predicted win probability at zero length difference.

    Returns ``{"lc_win_rate", "win_rate", "intercept", "length_coef", "length_sd", "n"}``;
    all preferences equal (no regression possible) gives that value as both rates.
    """
    y = np.asarray(preferences, dtype=np.float64)
    d = np.asarray(candidate_lengths, dtype=np.float64) - np.asarray(
        baseline_lengths, dtype=np.float64
    )
    if y.ndim != 1 or y.shape != d.shape:
        raise ValueError(
            f"preferences and lengths must be 1-D of one length; got {y.shape}, {d.shape}"
        )
    if len(y) == 0:
        raise ValueError("no preferences")
    if ((y < 0) | (y > 1) | ~np.isfinite(y)).any():
        raise ValueError("preferences must lie in [0, 1]")
    if l2 < 0:
        raise ValueError(f"l2 must be >= 0; got {l2}")
    win_rate = float(y.mean())
    sd = float(d.std())
    out: dict[str, Any] = {"win_rate": win_rate, "length_sd": sd, "n": len(y)}
    if win_rate in (0.0, 1.0):
        return {**out, "lc_win_rate": win_rate, "intercept": None, "length_coef": None}
    x = np.tanh(d / sd) if sd > 0 else np.zeros_like(d)
    X = np.stack([np.ones_like(x), x], axis=1)
    pen = np.array([0.0, l2])
    theta = np.array([math.log(win_rate / (1 - win_rate)), 0.0])
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-(X @ theta)))
        grad = X.T @ (p - y) + pen * theta
        hess = (X * (p * (1 - p))[:, None]).T @ X + np.diag(pen) + 1e-12 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        theta = theta - step
        if float(np.abs(step).max()) < 1e-12:
            break
    return {
        **out,
        "lc_win_rate": float(1.0 / (1.0 + math.exp(-theta[0]))),
        "intercept": float(theta[0]),
        "length_coef": float(theta[1]),
    }
