"""A local Ray session (2 CPUs, no dashboard, no external service) for the whole folder."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest

HAS_RAY = (
    importlib.util.find_spec("ray") is not None and importlib.util.find_spec("ray.data") is not None
)


@pytest.fixture(scope="session")
def ray_session() -> Iterator[Any]:
    """``ray``, initialized locally once per session and shut down at the end."""
    if not HAS_RAY:
        pytest.skip("ray[data] is not installed (pip install 'ray[data]>=2.60')")
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    yield ray
    if started:
        ray.shutdown()
