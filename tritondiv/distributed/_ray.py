"""The one place that imports Ray (lazily) and connects to a cluster.

Ray is an optional dependency (the ``ray`` extra): nothing in tritondiv imports it at
module level, so the rest of the package works without it.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["ensure_ray", "quiet_remote_args", "ray_available", "require_ray"]

_HINT = "install it with: pip install 'ray[data]>=2.60'"


def ray_available() -> bool:
    """True when ``ray`` (with Ray Data) can be imported."""
    try:
        importlib.import_module("ray")
        importlib.import_module("ray.data")
    except ImportError:
        return False
    return True


def require_ray() -> Any:
    """Import and return the ``ray`` module, or raise ImportError saying how to install it."""
    try:
        ray = importlib.import_module("ray")
        importlib.import_module("ray.data")
    except ImportError as exc:
        raise ImportError(f"tritondiv.distributed needs Ray (ray[data]); {_HINT}") from exc
    return ray


def ensure_ray(address: str | None = None, **init_kwargs: Any) -> Any:
    """Return ``ray``, connected: reuse a running session, else ``ray.init(address=address, **init_kwargs)``.

    Parameters
    ----------
    address : str, optional
        A cluster address (``"auto"``, ``"ray://host:10001"``, ...). ``None`` with no running
        session starts a local one on this machine. Ignored when a session is running.
    **init_kwargs
        Passed to ``ray.init`` when a session is started (``num_cpus=``, ...).
    """
    if address is not None and not isinstance(address, str):
        raise TypeError(f"address must be a str or None, got {type(address).__name__}")
    ray = require_ray()
    if not ray.is_initialized():
        # Ray workers start in the driver's working directory and put it first on their
        # sys.path: from a source checkout they would import its tritondiv folder (no
        # compiled core) instead of the installed package. Start the session from the folder
        # that holds the tritondiv this driver imported, so the workers import the same one.
        import os
        from pathlib import Path

        import tritondiv

        old = os.getcwd()
        os.chdir(Path(tritondiv.__file__).resolve().parents[1])
        try:
            ray.init(address=address, **init_kwargs)
        finally:
            os.chdir(old)
    return ray


def quiet_remote_args(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a Ray Data method that takes ``max_retries`` as a remote argument.

    Ray Data 2.60 still honours ``max_retries=`` in ``map_batches`` but warns that the
    catch-all remote arguments are deprecated; the bounded retry count is what we want, so
    the warning is silenced for this call only.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*ray_remote_args.*deprecated.*")
        return call(*args, **kwargs)
