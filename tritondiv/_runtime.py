"""Runtime facts and switches: the compiled core, its OpenMP state and thread count."""

from __future__ import annotations

import importlib.util
import platform
import sys
from typing import Any

try:
    from tritondiv import _core
except ImportError as exc:  # pragma: no cover - only when the package was not built
    raise ImportError(
        "tritondiv._core (the compiled C++ core) is missing: install the package with "
        "`pip install .` or run `make install` rather than importing the source folder"
    ) from exc

__all__ = ["env_info", "max_threads", "num_threads", "openmp_enabled", "set_num_threads"]


def openmp_enabled() -> bool:
    """Return whether the C++ core was built with OpenMP."""
    return bool(_core.openmp)


def num_threads() -> int:
    """Return the number of threads the C++ kernels use (1 without OpenMP)."""
    return int(_core.num_threads())


def set_num_threads(n: int) -> None:
    """Set the number of threads of the C++ kernels.

    Parameters
    ----------
    n : int
        Thread count; ``n <= 0`` restores the default (all cores). At most
        :func:`max_threads` (``max(256, 4 x hardware threads)``): tens of thousands of OpenMP
        threads exhaust memory or crash, so larger counts are refused.

    Raises
    ------
    TypeError
        When ``n`` is not an int.
    ValueError
        When ``n`` exceeds :func:`max_threads`; the message names the bound.
    """
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError(f"set_num_threads: n must be an int, got {type(n).__name__}")
    bound = max_threads()
    if n > bound:
        # checked here too so that ints beyond the C range get the same message
        raise ValueError(
            f"set_num_threads: {n} threads exceeds the limit of {bound} "
            "(max(256, 4 x hardware threads))"
        )
    _core.set_num_threads(max(n, 0))


def max_threads() -> int:
    """Return the largest thread count :func:`set_num_threads` accepts.

    The bound is ``max(256, 4 x hardware threads)``; it lives in the C++ core.
    """
    return int(_core.max_threads())


def _version(pkg: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(pkg)
    except Exception:
        return None


def env_info() -> dict[str, Any]:
    """Return versions, the OpenMP state and threads, and whether Triton/CUDA are usable.

    Returns
    -------
    dict
        Keys: ``tritondiv``, ``python``, ``platform``, ``openmp``, ``threads``, ``numpy``,
        ``tokenizers``, ``torch``, ``triton``, ``cuda`` (bool), ``triton_usable`` (bool)
        and ``triton_interpret`` (bool, ``TRITON_INTERPRET=1``).
    """
    import os

    import tritondiv

    info: dict[str, Any] = {
        "tritondiv": tritondiv.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "openmp": openmp_enabled(),
        "threads": num_threads(),
    }
    for pkg in ("numpy", "tokenizers", "pyarrow", "datasets", "torch", "triton", "transformers"):
        info[pkg] = _version(pkg)
    cuda = False
    if importlib.util.find_spec("torch") is not None:
        try:
            import torch

            cuda = bool(torch.cuda.is_available())
        except Exception:  # a broken torch install is reported, not raised
            cuda = False
    info["cuda"] = cuda
    interpret = os.environ.get("TRITON_INTERPRET", "0") == "1"
    info["triton_interpret"] = interpret
    info["triton_usable"] = info["triton"] is not None and (cuda or interpret)
    return info
