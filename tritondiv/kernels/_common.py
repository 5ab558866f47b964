"""Input checks, metric names and device resolution shared by the CPU and Triton paths.

Nothing here imports torch or triton at module import: torch is only touched when the
caller passes a torch tensor or asks for the Triton path.
"""

from __future__ import annotations

import functools
import glob
import os
import sys
from typing import Any, Literal

import numpy as np

__all__ = [
    "DEFAULT_BLOCK",
    "METRICS",
    "check_metric",
    "have_threadpoolctl",
    "is_torch_tensor",
    "resolve_device",
    "single_thread_blas",
    "to_float32",
]

Metric = Literal["cosine", "sqeuclidean"]
METRICS: tuple[str, ...] = ("cosine", "sqeuclidean")
# Rows (and columns) of one BLAS block: a 4096 x 4096 float32 block is 64 MiB.
DEFAULT_BLOCK = 4096


def check_metric(metric: str) -> str:
    """Return ``metric`` if it is supported, else raise ValueError naming the choices."""
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r} is not supported; use one of {list(METRICS)}")
    return metric


def is_torch_tensor(x: Any) -> bool:
    """True for a torch.Tensor, without importing torch."""
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def _dtype_name(x: Any) -> str:
    return str(x.dtype).replace("torch.", "")


def to_float32(x: Any, name: str, *, allow_empty: bool = True) -> np.ndarray:
    """Return ``x`` as a C-contiguous float32 numpy array of shape (n, d).

    Accepts numpy arrays (float32, float16, float64, bfloat16 from ``ml_dtypes``) and torch
    tensors (float32, float16, bfloat16, float64; any device; copied to host). A
    C-contiguous float32 array (e.g. a read-only ``np.load(mmap_mode="r")`` memmap) is
    returned without a copy; other dtypes are converted (a full float32 copy). Raises
    TypeError for other dtypes and ValueError for a wrong ndim, d = 0 or non-finite values.
    """
    if is_torch_tensor(x):
        if _dtype_name(x) not in ("float32", "float16", "bfloat16", "float64"):
            raise TypeError(
                f"{name}: expected a float32/float16/bfloat16 tensor, got dtype {x.dtype}"
            )
        arr = x.detach().to("cpu").float().numpy()
    elif isinstance(x, np.ndarray):
        dt = _dtype_name(x)
        if dt not in ("float32", "float16", "bfloat16", "float64"):
            raise TypeError(
                f"{name}: expected a float32/float16/bfloat16 array, got dtype {x.dtype} "
                f"(convert with .astype(np.float32))"
            )
        arr = x.astype(np.float32, copy=False)
    else:
        raise TypeError(
            f"{name}: expected a 2-D numpy array or torch tensor, got {type(x).__name__}"
        )
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (n, d), got shape {tuple(arr.shape)}")
    if arr.shape[1] == 0:
        raise ValueError(f"{name}: dimension d must be >= 1, got shape {tuple(arr.shape)}")
    if not allow_empty and arr.shape[0] == 0:
        raise ValueError(f"{name}: needs at least one row, got shape {tuple(arr.shape)}")
    arr = np.ascontiguousarray(arr)  # no copy for a C-contiguous (memory-mapped) float32
    if not _all_finite(arr):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return arr


def _all_finite(arr: np.ndarray, block: int = 1 << 16) -> bool:
    """Whether every value is finite, block by block (no full-size boolean temporary)."""
    return all(np.isfinite(arr[s : s + block]).all() for s in range(0, arr.shape[0], block))


@functools.lru_cache(maxsize=1)
def _cuda_available() -> bool:
    # Cheap negative answers first, so `device="auto"` never imports torch on a machine
    # without an NVIDIA driver.
    if os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1"):
        return False
    if "torch" not in sys.modules and sys.platform.startswith("linux"):
        if not glob.glob("/dev/nvidia[0-9]*"):
            return False
    try:
        import torch
    except ImportError:
        return False
    if not torch.cuda.is_available():
        return False
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_device(device: str, *inputs: Any) -> Literal["cpu", "triton"]:
    """Map ``device`` ("auto", "cpu", "triton") to the path that runs.

    ``auto``: Triton when a CUDA GPU (and triton) is available, else the CPU path.
    ``triton`` forces the Triton kernels (on CPU tensors it needs ``TRITON_INTERPRET=1``).
    """
    if device == "cpu":
        return "cpu"
    if device == "triton":
        return "triton"
    if device == "auto":
        if any(is_torch_tensor(x) and x.device.type == "cuda" for x in inputs if x is not None):
            return "triton"
        return "triton" if _cuda_available() else "cpu"
    raise ValueError(f"device={device!r} is not supported; use 'auto', 'cpu' or 'triton'")


@functools.lru_cache(maxsize=1)
def have_threadpoolctl() -> bool:
    """Whether threadpoolctl is importable (an optional dependency: it lets small, many
    sgemm calls run on one BLAS thread each, which avoids a thread hand-off per call)."""
    import importlib.util

    return importlib.util.find_spec("threadpoolctl") is not None


def single_thread_blas() -> Any:
    """Context manager holding BLAS to one thread (a no-op without threadpoolctl)."""
    if not have_threadpoolctl():
        import contextlib

        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    return threadpool_limits(1, user_api="blas")
