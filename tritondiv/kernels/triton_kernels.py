"""Triton kernels (GPU path) of the dissimilarity kernels: nearest, top-k, mean.

Each program owns ``BLOCK_M`` rows of ``X`` and walks ``Y`` in ``BLOCK_N``-row tiles;
a tile's ``X·Yᵀ`` is accumulated over ``d`` in ``BLOCK_D`` chunks with ``tl.dot`` in
float32 (fp16/bf16 inputs on tensor cores; float32 inputs with ``input_precision="ieee"``
so results match the CPU path — cast to fp16/bf16 first for tensor-core speed; under
the interpreter bf16 tiles are upcast to float32 before the dot, see ``_upcast``), then
turned into dissimilarities and reduced in registers: the ``N × M`` matrix never exists.
Per-row norms (``1/|x|`` for cosine, ``|x|²`` for squared L2) are precomputed on the host
side in float32 (O(N·d)); zero rows get ``1/|x| = 0`` (cosine similarity 0 with everything).
Sizes that are not multiples of the tiles are masked (``d`` padded with zeros, missing
columns set to +inf / 0).

* ``nearest``: running (min, argmin) per row; ``tl.argmin(tie_break_left=True)`` and a
  strict ``<`` across tiles keep the smaller index on ties.
* ``top-k`` (k <= 64): a running ``BLOCK_M × KP`` list (KP = next power of two >= k) in
  registers; each tile is merged by repeated extraction of its best column while any row
  of the program still improves (after the first tiles, usually one extraction per tile);
  order: smaller dissimilarity, then smaller index.
* ``mean``: per-row fused sum of dissimilarities over ``j != i``; the host adds the row
  sums in float64 (deterministic; no atomics).

Launch configuration (GPU): grid ``(cdiv(N, BLOCK_M),)``; defaults BLOCK_M = BLOCK_N = 64,
BLOCK_D = 64, ``num_warps=4``, ``num_stages=2``. Expected (not yet measured: no GPU on
the development machine): nearest and mean are GEMMs with a short K loop (d = 384) and a
register epilogue, ~40–60% of the fp16 tensor-core peak; top-k pays an extraction loop
per tile early on, ~25–40%. To be measured when a GPU is available.

Under ``TRITON_INTERPRET=1`` (set before triton is imported) the same kernels run on CPU
tensors through the Triton interpreter; tests use that with small shapes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import triton
import triton.language as tl

__all__ = [
    "interpreted",
    "mean_triton",
    "nearest_triton",
    "topk_triton",
]

BLOCK_M = 64
BLOCK_N = 64
BLOCK_D = 64
_BIG_ID = 1 << 62


def interpreted() -> bool:
    """True when the kernels of this module run under the Triton interpreter."""
    return type(_nearest_kernel).__name__ == "InterpretedFunction"


@triton.jit
def _tile_dissimilarity(
    x_ptr,
    y_ptr,
    xs,
    ys_ptr,
    rm,
    rn,
    mask_m,
    mask_n,
    M,
    D,
    stride_x,
    stride_y,
    COSINE: tl.constexpr,
    IEEE: tl.constexpr,
    UPCAST: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    for k0 in range(0, D, BLOCK_D):
        rk = k0 + tl.arange(0, BLOCK_D)
        mask_k = rk < D
        a = tl.load(
            x_ptr + rm[:, None] * stride_x + rk[None, :],
            mask=mask_m[:, None] & mask_k[None, :],
            other=0.0,
        )
        b = tl.load(
            y_ptr + rn[:, None] * stride_y + rk[None, :],
            mask=mask_n[:, None] & mask_k[None, :],
            other=0.0,
        )
        if UPCAST:
            a = a.to(tl.float32)
            b = b.to(tl.float32)
        if IEEE:
            acc += tl.dot(a, tl.trans(b), input_precision="ieee")
        else:
            acc += tl.dot(a, tl.trans(b))
    ys = tl.load(ys_ptr + rn, mask=mask_n, other=0.0)
    if COSINE:
        dis = 1.0 - acc * xs[:, None] * ys[None, :]
    else:
        dis = tl.maximum(xs[:, None] + ys[None, :] - 2.0 * acc, 0.0)
    return dis


@triton.jit
def _nearest_kernel(
    x_ptr,
    y_ptr,
    xs_ptr,
    ys_ptr,
    out_val,
    out_idx,
    N,
    M,
    D,
    stride_x,
    stride_y,
    COSINE: tl.constexpr,
    IEEE: tl.constexpr,
    UPCAST: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    pid = tl.program_id(0)
    rm = pid * BLOCK_M + tl.arange(0, BLOCK_M)
    mask_m = rm < N
    xs = tl.load(xs_ptr + rm, mask=mask_m, other=0.0)
    best = tl.full([BLOCK_M], float("inf"), tl.float32)
    best_i = tl.full([BLOCK_M], -1, tl.int64)
    for n0 in range(0, M, BLOCK_N):
        rn = n0 + tl.arange(0, BLOCK_N)
        mask_n = rn < M
        dis = _tile_dissimilarity(
            x_ptr, y_ptr, xs, ys_ptr, rm, rn, mask_m, mask_n, M, D, stride_x, stride_y,
            COSINE, IEEE, UPCAST, BLOCK_M, BLOCK_N, BLOCK_D,
        )  # fmt: skip
        dis = tl.where(mask_n[None, :], dis, float("inf"))
        tmin = tl.min(dis, axis=1)
        targ = tl.argmin(dis, axis=1, tie_break_left=True).to(tl.int64) + n0
        upd = tmin < best
        best = tl.where(upd, tmin, best)
        best_i = tl.where(upd, targ, best_i)
    tl.store(out_val + rm, best, mask=mask_m)
    tl.store(out_idx + rm, best_i, mask=mask_m)


@triton.jit
def _topk_kernel(
    x_ptr,
    y_ptr,
    xs_ptr,
    ys_ptr,
    out_val,
    out_idx,
    N,
    M,
    D,
    K,
    stride_x,
    stride_y,
    COSINE: tl.constexpr,
    IEEE: tl.constexpr,
    UPCAST: tl.constexpr,
    EXCLUDE_SELF: tl.constexpr,
    KP: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    BIG: tl.constexpr = 1 << 62
    pid = tl.program_id(0)
    rm = pid * BLOCK_M + tl.arange(0, BLOCK_M)
    mask_m = rm < N
    xs = tl.load(xs_ptr + rm, mask=mask_m, other=0.0)
    kk = tl.arange(0, KP)
    run_v = tl.full([BLOCK_M, KP], float("inf"), tl.float32)
    run_i = tl.full([BLOCK_M, KP], BIG, tl.int64)
    for n0 in range(0, M, BLOCK_N):
        cn = tl.arange(0, BLOCK_N)
        rn = n0 + cn
        mask_n = rn < M
        dis = _tile_dissimilarity(
            x_ptr, y_ptr, xs, ys_ptr, rm, rn, mask_m, mask_n, M, D, stride_x, stride_y,
            COSINE, IEEE, UPCAST, BLOCK_M, BLOCK_N, BLOCK_D,
        )  # fmt: skip
        valid = mask_n[None, :] & mask_m[:, None]
        if EXCLUDE_SELF:
            valid = valid & (rn[None, :] != rm[:, None])
        dis = tl.where(valid, dis, float("inf"))
        t = 0
        go = t < KP
        while go:
            c = tl.min(dis, axis=1)
            cpos = tl.argmin(dis, axis=1, tie_break_left=True)
            cid = cpos.to(tl.int64) + n0
            # worst entry of the running list: largest value, then largest id
            w = tl.max(run_v, axis=1)
            wid = tl.max(tl.where(run_v == w[:, None], run_i, -1), axis=1)
            wslot = tl.min(
                tl.where((run_v == w[:, None]) & (run_i == wid[:, None]), kk[None, :], KP),
                axis=1,
            )
            better = (c < float("inf")) & ((c < w) | ((c == w) & (cid < wid)))
            put = better[:, None] & (kk[None, :] == wslot[:, None])
            run_v = tl.where(put, c[:, None], run_v)
            run_i = tl.where(put, cid[:, None], run_i)
            dis = tl.where(cn[None, :] == cpos[:, None], float("inf"), dis)
            t += 1
            go = (tl.max(better.to(tl.int32), axis=0) > 0) & (t < KP)
    # emit the K best in ascending (value, id) order
    taken = tl.zeros([BLOCK_M, KP], tl.int32)
    for q in range(0, K):
        vv = tl.where(taken == 0, run_v, float("inf"))
        ii = tl.where(taken == 0, run_i, BIG + 1)
        v = tl.min(vv, axis=1)
        i = tl.min(tl.where(vv == v[:, None], ii, BIG + 1), axis=1)
        taken = tl.where(ii == i[:, None], 1, taken)
        i = tl.where(i >= BIG, -1, i)
        tl.store(out_val + rm * K + q, v, mask=mask_m)
        tl.store(out_idx + rm * K + q, i, mask=mask_m)


@triton.jit
def _mean_kernel(
    x_ptr,
    xs_ptr,
    out_ptr,
    N,
    D,
    stride_x,
    COSINE: tl.constexpr,
    IEEE: tl.constexpr,
    UPCAST: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    pid = tl.program_id(0)
    rm = pid * BLOCK_M + tl.arange(0, BLOCK_M)
    mask_m = rm < N
    xs = tl.load(xs_ptr + rm, mask=mask_m, other=0.0)
    acc = tl.zeros([BLOCK_M], tl.float32)
    for n0 in range(0, N, BLOCK_N):
        rn = n0 + tl.arange(0, BLOCK_N)
        mask_n = rn < N
        dis = _tile_dissimilarity(
            x_ptr, x_ptr, xs, xs_ptr, rm, rn, mask_m, mask_n, N, D, stride_x, stride_x,
            COSINE, IEEE, UPCAST, BLOCK_M, BLOCK_N, BLOCK_D,
        )  # fmt: skip
        keep = mask_n[None, :] & (rn[None, :] != rm[:, None])
        acc += tl.sum(tl.where(keep, dis, 0.0), axis=1)
    tl.store(out_ptr + rm, acc, mask=mask_m)


# ---- host side ---------------------------------------------------------------------------


def _as_tensor(x: Any, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        t = x.detach()
    elif isinstance(x, np.ndarray):
        if x.dtype.name == "bfloat16":  # ml_dtypes
            t = torch.from_numpy(x.view(np.uint16).copy()).view(torch.bfloat16)
        else:
            t = torch.from_numpy(np.ascontiguousarray(x))
    else:
        raise TypeError(f"{name}: expected a numpy array or torch tensor, got {type(x).__name__}")
    if t.dtype == torch.float64:
        t = t.float()
    if t.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise TypeError(f"{name}: expected float32/float16/bfloat16, got {t.dtype}")
    if t.ndim != 2 or t.shape[1] == 0:
        raise ValueError(f"{name}: expected a 2-D (n, d) array with d >= 1, got {tuple(t.shape)}")
    if not interpreted():
        if not torch.cuda.is_available():
            raise RuntimeError(
                "device='triton' needs a CUDA GPU, or TRITON_INTERPRET=1 set before triton "
                "is imported (interpreter, for tests); use device='cpu' otherwise"
            )
        t = t.to("cuda")
    elif t.device.type != "cpu":
        t = t.cpu()
    t = t.contiguous()
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return t


def _row_stats(t: torch.Tensor, cosine: bool) -> torch.Tensor:
    sq = (t.float() ** 2).sum(dim=1)
    if not cosine:
        return sq.contiguous()
    norms = sq.sqrt()
    return torch.where(norms > 0, 1.0 / norms, torch.zeros_like(norms)).contiguous()


def _pair(x: Any, y: Any) -> tuple[torch.Tensor, torch.Tensor]:
    tx = _as_tensor(x, "X")
    ty = _as_tensor(y, "Y")
    if tx.shape[1] != ty.shape[1]:
        raise ValueError(f"X has d={tx.shape[1]} but Y has d={ty.shape[1]}; they must match")
    if tx.dtype != ty.dtype:
        ty = ty.to(tx.dtype)
    return tx, ty


def _blocks(block_m: int | None, block_n: int | None, block_d: int | None) -> tuple[int, int, int]:
    bm, bn, bd = block_m or BLOCK_M, block_n or BLOCK_N, block_d or BLOCK_D
    for v, nm in ((bm, "block_m"), (bn, "block_n"), (bd, "block_d")):
        if v < 16 or v & (v - 1):
            raise ValueError(f"{nm} must be a power of two >= 16, got {v}")
    return bm, bn, bd


def _upcast(t: torch.Tensor) -> bool:
    # The Triton interpreter (3.7) computes tl.dot on bfloat16 tiles wrongly; interpreted
    # runs upcast bf16 tiles to float32 before the dot (on a GPU bf16 goes to tensor cores).
    return interpreted() and t.dtype == torch.bfloat16


def _launch_opts() -> dict[str, int]:
    return {} if interpreted() else {"num_warps": 4, "num_stages": 2}


def nearest_triton(
    X: Any,
    Y: Any,
    *,
    metric: str = "cosine",
    block_m: int | None = None,
    block_n: int | None = None,
    block_d: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Row min dissimilarity of X to Y and its argmin (see module docstring)."""
    tx, ty = _pair(X, Y)
    n, d = tx.shape
    m = ty.shape[0]
    if m == 0:
        raise ValueError("Y: needs at least one row")
    bm, bn, bd = _blocks(block_m, block_n, block_d)
    cos = metric == "cosine"
    out_v = torch.empty(n, dtype=torch.float32, device=tx.device)
    out_i = torch.empty(n, dtype=torch.int64, device=tx.device)
    if n:
        _nearest_kernel[(triton.cdiv(n, bm),)](
            tx, ty, _row_stats(tx, cos), _row_stats(ty, cos), out_v, out_i, n, m, d,
            tx.stride(0), ty.stride(0), COSINE=cos, IEEE=tx.dtype == torch.float32, UPCAST=_upcast(tx),
            BLOCK_M=bm, BLOCK_N=bn, BLOCK_D=bd, **_launch_opts(),
        )  # fmt: skip
    return out_v.cpu().numpy(), out_i.cpu().numpy()


def topk_triton(
    X: Any,
    Y: Any,
    k: int,
    *,
    metric: str = "cosine",
    exclude_self: bool = False,
    block_m: int | None = None,
    block_n: int | None = None,
    block_d: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The k least dissimilar rows of Y per row of X, ascending (k <= 64)."""
    tx, ty = _pair(X, Y)
    n, d = tx.shape
    m = ty.shape[0]
    if not 1 <= k <= 64:
        raise ValueError(f"k must be in [1, 64] on the Triton path, got {k}")
    if exclude_self and m != n:
        raise ValueError(f"exclude_self=True needs Y with as many rows as X ({n}), got {m}")
    available = m - 1 if exclude_self else m
    if k > available:
        raise ValueError(f"k={k} exceeds the {available} candidates per row; pass k <= {available}")
    bm, bn, bd = _blocks(block_m, block_n, block_d)
    kp = max(16, triton.next_power_of_2(k))
    cos = metric == "cosine"
    out_v = torch.empty((n, k), dtype=torch.float32, device=tx.device)
    out_i = torch.empty((n, k), dtype=torch.int64, device=tx.device)
    if n:
        _topk_kernel[(triton.cdiv(n, bm),)](
            tx, ty, _row_stats(tx, cos), _row_stats(ty, cos), out_v, out_i, n, m, d, k,
            tx.stride(0), ty.stride(0), COSINE=cos, IEEE=tx.dtype == torch.float32, UPCAST=_upcast(tx),
            EXCLUDE_SELF=exclude_self, KP=kp, BLOCK_M=bm, BLOCK_N=bn, BLOCK_D=bd,
            **_launch_opts(),
        )  # fmt: skip
    return out_v.cpu().numpy(), out_i.cpu().numpy()


def mean_triton(
    X: Any,
    *,
    metric: str = "cosine",
    block_m: int | None = None,
    block_n: int | None = None,
    block_d: int | None = None,
) -> float:
    """Exact mean dissimilarity over ordered pairs i != j (fused tiled reduction)."""
    tx = _as_tensor(X, "X")
    n, d = tx.shape
    if n < 2:
        raise ValueError(f"mean needs at least 2 rows, got {n}")
    bm, bn, bd = _blocks(block_m, block_n, block_d)
    cos = metric == "cosine"
    rows = torch.empty(n, dtype=torch.float32, device=tx.device)
    _mean_kernel[(triton.cdiv(n, bm),)](
        tx, _row_stats(tx, cos), rows, n, d, tx.stride(0), COSINE=cos,
        IEEE=tx.dtype == torch.float32, UPCAST=_upcast(tx), BLOCK_M=bm, BLOCK_N=bn, BLOCK_D=bd, **_launch_opts(),
    )  # fmt: skip
    return float(rows.double().sum().item() / (float(n) * (n - 1)))
