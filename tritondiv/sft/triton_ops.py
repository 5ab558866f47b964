"""Triton kernels for fine-tuning Llama-family models, with their autograd Functions.

- :func:`ce_chunk_triton` -- the cross-entropy step of the fused linear cross-entropy
  (:func:`tritondiv.sft.loss.linear_cross_entropy` gathers the response rows and runs the
  head chunk by chunk; this kernel turns one chunk of float32 logits into per-row losses
  and overwrites the logits with their gradient, one program per row, online
  log-sum-exp over ``BLOCK_V``-wide vocabulary tiles, so any vocabulary size works).
- :class:`RMSNormFunction` -- ``weight * (x / sqrt(mean(x^2) + eps))`` with float32
  statistics, forward and backward (the weight gradient reduced from per-program
  partial sums).
- :class:`SwiGLUFunction` -- ``silu(a) * b``, forward and backward, float32 math.

They need a CUDA GPU -- or, for correctness tests on a CPU, ``TRITON_INTERPRET=1`` set in
the environment *before* this module is imported (``triton.jit`` reads it when the
kernels are defined). :data:`INTERPRETED` says which mode the kernels were built in.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

__all__ = [
    "INTERPRETED",
    "RMSNormFunction",
    "SwiGLUFunction",
    "ce_chunk_triton",
    "fused_linear_cross_entropy",
    "rms_norm",
    "swiglu",
]

#: True when the kernels were defined under ``TRITON_INTERPRET=1`` (run on CPU tensors).
INTERPRETED: bool = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


# --------------------------------------------------------------------------- cross-entropy
@triton.jit
def _ce_kernel(
    logits_ptr,
    stride_row,
    targets_ptr,
    loss_ptr,
    n_cols,
    scale,
    ignore_index,
    GRAD: tl.constexpr,
    BLOCK_V: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    base = logits_ptr + row * stride_row
    y = tl.load(targets_ptr + row)
    valid = y != ignore_index
    y_safe = tl.where(valid, y, 0)
    # pass 1: online max / sum of exponentials over vocabulary tiles
    m = float("-inf")
    s = 0.0
    for start in range(0, n_cols, BLOCK_V):
        cols = start + tl.arange(0, BLOCK_V)
        x = tl.load(base + cols, mask=cols < n_cols, other=float("-inf")).to(tl.float32)
        m_new = tl.maximum(m, tl.max(x, axis=0))
        s = s * tl.exp(m - m_new) + tl.sum(tl.exp(x - m_new), axis=0)
        m = m_new
    lse = m + tl.log(s)
    x_y = tl.load(base + y_safe).to(tl.float32)
    loss = tl.where(valid, lse - x_y, 0.0)
    tl.store(loss_ptr + row, loss)
    if GRAD:
        # pass 2: d loss / d logits = scale * (softmax - onehot), written in place
        g_scale = tl.where(valid, scale, 0.0)
        for start in range(0, n_cols, BLOCK_V):
            cols = start + tl.arange(0, BLOCK_V)
            mask = cols < n_cols
            x = tl.load(base + cols, mask=mask, other=0.0).to(tl.float32)
            g = tl.exp(x - lse)
            g = tl.where(cols == y_safe, g - 1.0, g) * g_scale
            tl.store(base + cols, g, mask=mask)


def ce_chunk_triton(
    logits: torch.Tensor,
    targets: torch.Tensor,
    scale: float,
    grad: bool,
    *,
    ignore_index: int = -100,
    block_v: int | None = None,
) -> torch.Tensor:
    """Per-row cross-entropy of float32 ``logits [rows, V]``; with ``grad`` the logits are
    overwritten by ``scale * (softmax - onehot)`` (rows whose target is ``ignore_index``
    get loss 0 and gradient 0). Same contract as
    :func:`tritondiv.sft.loss.ce_chunk_torch`."""
    if logits.ndim != 2 or logits.dtype != torch.float32:
        raise TypeError(f"logits must be 2-D float32; got {logits.dtype} {tuple(logits.shape)}")
    if logits.stride(1) != 1:
        raise ValueError("logits must be contiguous along the vocabulary (call .contiguous())")
    rows, n_cols = logits.shape
    loss = torch.empty(rows, dtype=torch.float32, device=logits.device)
    if rows == 0:
        return loss
    if block_v is None:
        block_v = min(triton.next_power_of_2(n_cols), 8192)
    _ce_kernel[(rows,)](
        logits,
        logits.stride(0),
        targets.contiguous().long(),
        loss,
        n_cols,
        float(scale),
        int(ignore_index),
        GRAD=bool(grad),
        BLOCK_V=block_v,
    )
    return loss


def fused_linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    chunk_size: int | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    block_v: int | None = None,
) -> torch.Tensor:
    """Response-only causal-LM loss (unshifted ``labels``) with the Triton CE step: the
    gathered response rows go through the head chunk by chunk, never the full logits.
    See :func:`tritondiv.sft.loss.response_loss`."""
    from tritondiv.sft.loss import response_loss

    def step(lg: torch.Tensor, tg: torch.Tensor, sc: float, gr: bool) -> torch.Tensor:
        return ce_chunk_triton(lg, tg, sc, gr, ignore_index=ignore_index, block_v=block_v)

    return response_loss(
        hidden,
        weight,
        labels,
        bias=bias,
        chunk_size=chunk_size,
        ignore_index=ignore_index,
        reduction=reduction,
        ce_step=step,
    )


# --------------------------------------------------------------------------- RMSNorm
@triton.jit
def _rmsnorm_fwd_kernel(
    x_ptr, w_ptr, y_ptr, rstd_ptr, stride_x, stride_y, n_cols, eps, BLOCK_D: tl.constexpr
):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK_D)
    mask = cols < n_cols
    x_raw = tl.load(x_ptr + row * stride_x + cols, mask=mask, other=0.0)
    x = x_raw.to(tl.float32)
    var = tl.sum(x * x, axis=0) / n_cols
    rstd = 1.0 / tl.sqrt(var + eps)
    w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    # as transformers' LlamaRMSNorm: normalize in float32, cast to the input dtype, scale
    xn = (x * rstd).to(x_raw.dtype).to(tl.float32)
    tl.store(y_ptr + row * stride_y + cols, (xn * w).to(x_raw.dtype), mask=mask)
    tl.store(rstd_ptr + row, rstd)


@triton.jit
def _rmsnorm_bwd_kernel(
    dy_ptr,
    x_ptr,
    w_ptr,
    rstd_ptr,
    dx_ptr,
    dw_part_ptr,
    stride_dy,
    stride_x,
    stride_dx,
    n_rows,
    n_cols,
    rows_per_program,
    BLOCK_D: tl.constexpr,
):
    pid = tl.program_id(0)
    cols = tl.arange(0, BLOCK_D)
    mask = cols < n_cols
    w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    dw = tl.zeros((BLOCK_D,), dtype=tl.float32)
    row_start = pid * rows_per_program
    for i in range(0, rows_per_program):
        row = row_start + i
        if row < n_rows:
            r64 = row.to(tl.int64)
            x = tl.load(x_ptr + r64 * stride_x + cols, mask=mask, other=0.0).to(tl.float32)
            dy_raw = tl.load(dy_ptr + r64 * stride_dy + cols, mask=mask, other=0.0)
            dy = dy_raw.to(tl.float32)
            rstd = tl.load(rstd_ptr + r64)
            xhat = x * rstd
            wdy = w * dy
            c = tl.sum(wdy * xhat, axis=0) / n_cols
            dx = rstd * (wdy - xhat * c)
            tl.store(dx_ptr + r64 * stride_dx + cols, dx.to(dy_raw.dtype), mask=mask)
            dw += dy * xhat
    tl.store(dw_part_ptr + pid * n_cols + cols, dw, mask=mask)


class RMSNormFunction(torch.autograd.Function):
    """``y = weight * x / sqrt(mean(x^2, -1) + eps)`` over the last dimension."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:  # type: ignore[override]
        shape = x.shape
        x2 = x.reshape(-1, shape[-1]).contiguous()
        rows, d = x2.shape
        y = torch.empty_like(x2)
        rstd = torch.empty(rows, dtype=torch.float32, device=x.device)
        block_d = triton.next_power_of_2(d)
        if rows:
            _rmsnorm_fwd_kernel[(rows,)](
                x2, weight, y, rstd, x2.stride(0), y.stride(0), d, float(eps), BLOCK_D=block_d
            )
        ctx.save_for_backward(x2, weight, rstd)
        ctx.shape = shape
        return y.reshape(shape)

    @staticmethod
    def backward(ctx, dy: torch.Tensor):  # type: ignore[override]
        x2, weight, rstd = ctx.saved_tensors
        rows, d = x2.shape
        dy2 = dy.reshape(-1, d).contiguous()
        dx = torch.empty_like(x2)
        if x2.is_cuda:
            n_prog = min(
                rows, torch.cuda.get_device_properties(x2.device).multi_processor_count * 4
            )
        else:
            n_prog = min(rows, 4)
        n_prog = max(n_prog, 1)
        rows_per_program = triton.cdiv(rows, n_prog)
        dw_part = torch.zeros(n_prog, d, dtype=torch.float32, device=x2.device)
        if rows:
            _rmsnorm_bwd_kernel[(n_prog,)](
                dy2,
                x2,
                weight,
                rstd,
                dx,
                dw_part,
                dy2.stride(0),
                x2.stride(0),
                dx.stride(0),
                rows,
                d,
                rows_per_program,
                BLOCK_D=triton.next_power_of_2(d),
            )
        dw = dw_part.sum(0).to(weight.dtype)
        return dx.reshape(ctx.shape), dw, None


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Triton RMSNorm (see :class:`RMSNormFunction`)."""
    return RMSNormFunction.apply(x, weight, eps)


# --------------------------------------------------------------------------- SwiGLU
@triton.jit
def _swiglu_fwd_kernel(a_ptr, b_ptr, c_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    a_raw = tl.load(a_ptr + offs, mask=mask, other=0.0)
    a = a_raw.to(tl.float32)
    b = tl.load(b_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    silu = a * tl.sigmoid(a)
    tl.store(c_ptr + offs, (silu * b).to(a_raw.dtype), mask=mask)


@triton.jit
def _swiglu_bwd_kernel(dc_ptr, a_ptr, b_ptr, da_ptr, db_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    dc_raw = tl.load(dc_ptr + offs, mask=mask, other=0.0)
    dc = dc_raw.to(tl.float32)
    a = tl.load(a_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    b = tl.load(b_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    sig = tl.sigmoid(a)
    silu = a * sig
    db = dc * silu
    da = dc * b * (sig + silu * (1.0 - sig))
    tl.store(da_ptr + offs, da.to(dc_raw.dtype), mask=mask)
    tl.store(db_ptr + offs, db.to(dc_raw.dtype), mask=mask)


class SwiGLUFunction(torch.autograd.Function):
    """``c = silu(a) * b`` elementwise (the gated activation of Llama's MLP)."""

    BLOCK = 1024

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if a.shape != b.shape or a.dtype != b.dtype:
            raise ValueError(
                f"a and b must match: {a.dtype} {tuple(a.shape)} vs {b.dtype} {tuple(b.shape)}"
            )
        a_c, b_c = a.contiguous(), b.contiguous()
        c = torch.empty_like(a_c)
        n = a_c.numel()
        if n:
            grid = (triton.cdiv(n, SwiGLUFunction.BLOCK),)
            _swiglu_fwd_kernel[grid](a_c, b_c, c, n, BLOCK=SwiGLUFunction.BLOCK)
        ctx.save_for_backward(a_c, b_c)
        return c

    @staticmethod
    def backward(ctx, dc: torch.Tensor):  # type: ignore[override]
        a_c, b_c = ctx.saved_tensors
        dc = dc.contiguous()
        da = torch.empty_like(a_c)
        db = torch.empty_like(b_c)
        n = a_c.numel()
        if n:
            grid = (triton.cdiv(n, SwiGLUFunction.BLOCK),)
            _swiglu_bwd_kernel[grid](dc, a_c, b_c, da, db, n, BLOCK=SwiGLUFunction.BLOCK)
        return da, db


def swiglu(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Triton ``silu(a) * b`` (see :class:`SwiGLUFunction`)."""
    return SwiGLUFunction.apply(a, b)
