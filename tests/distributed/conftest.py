"""A local Ray session (2 CPUs, no dashboard, no external service) for the whole folder,
and a real sharded pool with its token statistics computed once on the cluster."""

from __future__ import annotations

import gzip
import importlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tritondiv as td

try:
    importlib.import_module("ray")
    importlib.import_module("ray.data")
    HAS_RAY = True
except ImportError:
    HAS_RAY = False


@pytest.fixture(scope="session")
def ray_session() -> Iterator[Any]:
    """``ray``, initialized locally once per session and shut down at the end."""
    if not HAS_RAY:
        pytest.skip("ray[data] is not installed (pip install 'ray[data]>=2.60')")
    import ray

    from tritondiv.distributed._ray import ensure_ray

    started = not ray.is_initialized()
    if started:
        ensure_ray(
            None,
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    yield ray
    if started:
        ray.shutdown()


def _jsonl_lines(path: Path, start: int, stop: int) -> list[str]:
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i >= stop:
                break
            if i >= start:
                out.append(line.rstrip("\n"))
    return out


@pytest.fixture(scope="session")
def shard_dir(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four real shards, three formats: T0 and GSM8K jsonl, Code Alpaca json (2 empty outputs)."""
    root = tmp_path_factory.mktemp("shards")
    t0 = _jsonl_lines(shared_data / "t0_50k.jsonl.gz", 0, 1500)
    (root / "a_t0_0.jsonl").write_text("\n".join(t0[:800]) + "\n", encoding="utf-8")
    (root / "b_t0_1.jsonl").write_text("\n".join(t0[800:]) + "\n", encoding="utf-8")
    gsm = _jsonl_lines(shared_data / "gsm8k_train.jsonl.gz", 0, 700)
    (root / "c_gsm8k.jsonl").write_text("\n".join(gsm) + "\n", encoding="utf-8")
    with gzip.open(shared_data / "codealpaca_2k.json.gz", "rt", encoding="utf-8") as fh:
        alpaca = json.load(fh)
    (root / "d_alpaca.json").write_text(json.dumps(alpaca), encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def local_pool(shard_dir: Path) -> td.Pool:
    return td.load_pool(shard_dir, allow_empty=True)


@pytest.fixture(scope="session")
def tokenizer() -> Any:
    return td.load_tokenizer()


@pytest.fixture(scope="session")
def instruction_stats(ray_session: Any, local_pool: td.Pool) -> Any:
    """token_stats_ray of the in-memory pool's instructions (5 blocks, relative band)."""
    from tritondiv.distributed import token_stats_ray

    return token_stats_ray(local_pool, "instruction", None, lo="0.002x", hi="0.1x", num_blocks=5)
