"""Shared fixtures: the ../shared/data folder, seeded RNGs, a per-test cache folder."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TRITONDIV_SHARED_DATA", REPO.parent / "shared" / "data"))


def pytest_configure(config: pytest.Config) -> None:
    # Never reach a model or data hub from tests.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data folder ``../shared/data``; tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (it sits beside the checkout in CI)")
    return SHARED_DATA


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(autouse=True)
def _isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One cache folder per test session, never the user's ~/.cache.
    monkeypatch.setenv("TRITONDIV_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


# ---- a real mixed pool (T0 templates + GSM8K) with tags and embeddings -------------------

T0_ROWS = 55_185
GSM8K_START = 78_806 - 7_473


def _read_jsonl_gz(path: Path, stop: int | None = None) -> list[dict]:
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if stop is not None and i >= stop:
                break
            out.append(json.loads(line))
    return out


def _make_mixed_pool(shared_data: Path, folder: Path, n_t0: int = 2500, n_gsm: int = 500) -> dict:
    """A real pool of T0 (every template, strided) + GSM8K rows, a ``tags`` list field on
    every record, and the matching rows of the precomputed embeddings."""
    folder.mkdir(parents=True, exist_ok=True)
    stride = T0_ROWS // n_t0
    t0_idx = np.arange(n_t0) * stride
    t0 = _read_jsonl_gz(shared_data / "t0_50k.jsonl.gz")
    with open(folder / "a_t0.jsonl", "w", encoding="utf-8") as fh:
        for i in t0_idx:
            rec = dict(t0[i])
            rec["tags"] = [rec["template"], rec["template"].split("_")[0]]
            fh.write(json.dumps(rec) + "\n")
    gsm = _read_jsonl_gz(shared_data / "gsm8k_train.jsonl.gz", n_gsm)
    with open(folder / "b_gsm8k.jsonl", "w", encoding="utf-8") as fh:
        for rec in gsm:
            fh.write(json.dumps({**rec, "tags": ["math word problem", "arithmetic"]}) + "\n")
    rows = np.concatenate([t0_idx, GSM8K_START + np.arange(n_gsm)])
    paths = {}
    for comp in ("instruction", "response"):
        X = np.load(shared_data / "embeddings" / f"minilm_{comp}.f16.npy", mmap_mode="r")
        paths[comp] = folder / f"emb_{comp}.npy"
        np.save(paths[comp], np.asarray(X[rows]))
    return {
        "pool": [str(folder / "a_t0.jsonl"), str(folder / "b_gsm8k.jsonl")],
        "emb": paths,
        "templates": [t0[i]["template"] for i in t0_idx] + ["gsm8k"] * n_gsm,
    }


@pytest.fixture(scope="session")
def make_mixed_pool(shared_data: Path) -> Callable[..., dict[str, Any]]:
    """A factory: ``make_mixed_pool(folder, n_t0=2500, n_gsm=500)`` writes the pool files and
    the matching embedding rows into ``folder`` and returns their paths and templates."""

    def make(folder: Path, n_t0: int = 2500, n_gsm: int = 500) -> dict[str, Any]:
        return _make_mixed_pool(shared_data, folder, n_t0, n_gsm)

    return make
