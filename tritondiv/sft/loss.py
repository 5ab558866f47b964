"""Chunked, response-only causal-LM cross-entropy (plain torch).

The language-model head of a causal LM turns ``tokens x hidden`` states into
``tokens x vocab`` logits; for vocabularies of 32k-150k that matrix (and its float32
upcast, its softmax and its gradient) dominates the memory of a fine-tuning step.
:func:`response_loss` never builds it:

1. the labels are shifted (position ``t`` predicts token ``t + 1``) and only the rows
   whose target is a response token (label ``!= ignore_index``) are gathered;
2. those rows go through the head ``chunk_size`` rows at a time: logits of one chunk,
   float32 log-sum-exp, the loss, and -- when gradients are needed -- the gradient of the
   chunk's logits (``softmax - onehot``) written in place, immediately multiplied back
   into the gradients of the hidden states, the weight and the bias (float32
   accumulators). The backward pass only rescales those stored gradients.

Peak extra memory is therefore ``chunk_size x vocab`` float32 plus one weight-sized
float32 gradient accumulator, instead of several ``tokens x vocab`` matrices. The
per-chunk cross-entropy step is pluggable: plain torch here, a Triton kernel on CUDA
(:func:`tritondiv.sft.triton_ops.ce_chunk_triton`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

__all__ = [
    "IGNORE_INDEX",
    "ce_chunk_torch",
    "default_chunk_size",
    "linear_cross_entropy",
    "plain_response_loss",
    "response_loss",
    "shift_labels",
]

IGNORE_INDEX = -100

#: ``(logits fp32 [rows, V] (overwritten with d loss / d logits when grad is True),
#: targets int64 [rows], scale, grad) -> per-row loss fp32 [rows]``
CEStep = Callable[[torch.Tensor, torch.Tensor, float, bool], torch.Tensor]


def ce_chunk_torch(
    logits: torch.Tensor, targets: torch.Tensor, scale: float, grad: bool
) -> torch.Tensor:
    """Cross-entropy of one chunk of float32 logits, in plain torch.

    Parameters
    ----------
    logits : torch.Tensor
        ``[rows, vocab]`` float32, contiguous. When ``grad`` is True it is overwritten
        with ``scale * (softmax(logits) - onehot(targets))``.
    targets : torch.Tensor
        ``[rows]`` int64 target ids, all valid (masked rows were removed before).
    scale : float
        Multiplier of the gradient (``1 / n_tokens`` for a mean).
    grad : bool
        Whether to write the gradient into ``logits``.

    Returns
    -------
    torch.Tensor
        ``[rows]`` float32 per-row loss ``logsumexp(logits) - logits[target]``.
    """
    rows = torch.arange(logits.shape[0], device=logits.device)
    target_logit = logits[rows, targets]
    if not grad:
        return torch.logsumexp(logits, dim=-1) - target_logit
    # in place, so no chunk-sized temporary: exp(x - max), row sums, then the softmax
    m = logits.amax(dim=-1, keepdim=True)
    logits.sub_(m).exp_()
    s = logits.sum(dim=-1, keepdim=True)
    loss = (m + s.log()).squeeze(1) - target_logit
    logits.div_(s)
    logits[rows, targets] -= 1.0
    logits.mul_(scale)
    return loss


def default_chunk_size(vocab_size: int, budget_elements: int = 1 << 23) -> int:
    """Rows per chunk so that one chunk of float32 logits holds about ``budget_elements``
    (32 MiB by default): a power of two, at least 16."""
    rows = max(1, budget_elements // max(1, vocab_size))
    return max(16, 1 << (rows.bit_length() - 1))


class _ChunkedLinearCE(torch.autograd.Function):
    """Fused ``cross_entropy(h @ W.T + b, y)`` over pre-gathered valid rows."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,  # torch's FunctionCtx stub lacks needs_input_grad / saved_tensors
        h: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        targets: torch.Tensor,
        chunk_size: int,
        scale: float,
        ce_step: CEStep,
    ) -> torch.Tensor:
        need_h, need_w, need_b = (
            ctx.needs_input_grad[0],
            ctx.needs_input_grad[1],
            ctx.needs_input_grad[2],
        )
        need_any = need_h or need_w or (bias is not None and need_b)
        n = h.shape[0]
        total = torch.zeros((), dtype=torch.float32, device=h.device)
        grad_h = torch.empty_like(h) if need_h else None
        grad_w = (
            torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if need_w else None
        )
        grad_b = (
            torch.zeros(bias.shape, dtype=torch.float32, device=bias.device)
            if bias is not None and need_b
            else None
        )
        for start in range(0, n, chunk_size):
            hc = h[start : start + chunk_size]
            logits = hc @ weight.t()
            if bias is not None:
                logits = logits + bias
            logits = logits.float().contiguous()
            rows_loss = ce_step(logits, targets[start : start + chunk_size], scale, bool(need_any))
            total += rows_loss.sum()
            if need_any:
                g = logits if logits.dtype == h.dtype else logits.to(h.dtype)
                if grad_h is not None:
                    grad_h[start : start + chunk_size] = g @ weight
                if grad_w is not None:
                    if g.dtype == torch.float32 and hc.dtype == torch.float32:
                        grad_w.addmm_(g.t(), hc)
                    else:
                        grad_w += (g.t() @ hc).float()
                if grad_b is not None:
                    grad_b += logits.sum(0)
            del logits
        ctx.save_for_backward(grad_h, grad_w, grad_b)
        ctx.weight_dtype = weight.dtype
        ctx.bias_dtype = None if bias is None else bias.dtype
        return total * scale

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor):  # type: ignore[override]
        grad_h, grad_w, grad_b = ctx.saved_tensors
        # The stored gradients belong to this Function alone: scale them in place (no
        # weight-sized copy), and skip the scaling for the usual upstream gradient of 1.
        one = grad_out.numel() == 1 and float(grad_out) == 1.0
        if grad_h is not None and not one:
            grad_h = grad_h.mul_(grad_out.to(grad_h.dtype))
        if grad_w is not None:
            if not one:
                grad_w.mul_(grad_out)
            grad_w = grad_w.to(ctx.weight_dtype)
        if grad_b is not None:
            if not one:
                grad_b.mul_(grad_out)
            grad_b = grad_b.to(ctx.bias_dtype)
        return grad_h, grad_w, grad_b, None, None, None, None


def shift_labels(labels: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Labels for next-token prediction: ``out[..., t] = labels[..., t + 1]``, the last
    position gets ``ignore_index``."""
    out = torch.full_like(labels, ignore_index)
    out[..., :-1] = labels[..., 1:]
    return out


def linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    chunk_size: int | None = None,
    ignore_index: int = IGNORE_INDEX,
    reduction: str = "mean",
    ce_step: CEStep | None = None,
) -> torch.Tensor:
    """``cross_entropy(hidden @ weight.T + bias, targets)`` without the full logits.

    Parameters
    ----------
    hidden : torch.Tensor
        ``[..., d]`` hidden states (any float dtype).
    weight : torch.Tensor
        ``[vocab, d]`` head weight, same dtype as ``hidden``.
    targets : torch.Tensor
        ``hidden.shape[:-1]`` integer targets, already aligned (no shift here);
        ``ignore_index`` marks rows that do not count.
    bias : torch.Tensor, optional
        ``[vocab]`` head bias.
    chunk_size : int, optional
        Rows of logits materialized at once (default :func:`default_chunk_size`).
    ignore_index : int
        Target value of rows to skip.
    reduction : {"mean", "sum"}
        Mean over counted rows (0 when none counts) or sum.
    ce_step : callable, optional
        The per-chunk cross-entropy step (default :func:`ce_chunk_torch`).

    Returns
    -------
    torch.Tensor
        Scalar float32 loss, differentiable with respect to ``hidden``, ``weight`` and
        ``bias``.
    """
    if hidden.shape[:-1] != targets.shape:
        raise ValueError(
            f"targets shape {tuple(targets.shape)} must equal hidden.shape[:-1] = {tuple(hidden.shape[:-1])}"
        )
    if weight.ndim != 2 or weight.shape[1] != hidden.shape[-1]:
        raise ValueError(f"weight must be [vocab, {hidden.shape[-1]}]; got {tuple(weight.shape)}")
    if weight.dtype != hidden.dtype:
        raise TypeError(f"weight dtype {weight.dtype} must equal hidden dtype {hidden.dtype}")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum'; got {reduction!r}")
    if chunk_size is None:
        chunk_size = default_chunk_size(weight.shape[0])
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1; got {chunk_size}")
    flat_t = targets.reshape(-1)
    valid = (flat_t != ignore_index).nonzero().squeeze(1)
    n = int(valid.numel())
    if n == 0:
        # Nothing to predict: a zero loss that still connects to the graph.
        zero = hidden.sum() * 0.0 + weight.sum() * 0.0
        if bias is not None:
            zero = zero + bias.sum() * 0.0
        return zero.float()
    tv = flat_t.index_select(0, valid).long()
    if int(tv.min()) < 0 or int(tv.max()) >= weight.shape[0]:
        raise ValueError(
            f"targets must lie in [0, {weight.shape[0]}) or equal ignore_index={ignore_index}"
        )
    h = hidden.reshape(-1, hidden.shape[-1]).index_select(0, valid)
    scale = 1.0 / n if reduction == "mean" else 1.0
    return _ChunkedLinearCE.apply(
        h, weight, bias, tv, int(chunk_size), scale, ce_step or ce_chunk_torch
    )


def response_loss(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    chunk_size: int | None = None,
    ignore_index: int = IGNORE_INDEX,
    reduction: str = "mean",
    ce_step: CEStep | None = None,
) -> torch.Tensor:
    """Causal-LM loss on response tokens only, chunked (see the module docstring).

    ``labels`` are unshifted, as for ``model(input_ids, labels=labels)`` in transformers:
    ``labels[b, t]`` is token ``t`` when it belongs to a response, ``ignore_index``
    otherwise; the hidden state at ``t`` predicts label ``t + 1``. Equal to
    :func:`plain_response_loss` (up to float rounding).
    """
    return linear_cross_entropy(
        hidden,
        weight,
        shift_labels(labels, ignore_index),
        bias=bias,
        chunk_size=chunk_size,
        ignore_index=ignore_index,
        reduction=reduction,
        ce_step=ce_step,
    )


def plain_response_loss(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    ignore_index: int = IGNORE_INDEX,
    reduction: str = "mean",
) -> torch.Tensor:
    """The reference: full ``tokens x vocab`` float32 logits, then ``F.cross_entropy``
    (what transformers' causal-LM loss does). Mean over counted tokens; 0 when none."""
    logits = F.linear(hidden, weight, bias).float()
    target = shift_labels(labels, ignore_index)
    total = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]),
        target.reshape(-1),
        ignore_index=ignore_index,
        reduction="sum",
    )
    if reduction == "sum":
        return total
    n = int((target != ignore_index).sum())
    return total / max(n, 1)
