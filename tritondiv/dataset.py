"""The on-disk dataset folder, owned here: ``data.jsonl`` (the selected records) +
``manifest.json``; a ladder folder: ``ladder.json`` + ``<strategy>/level-<i>/`` datasets.

Every other module reads and writes datasets and ladders through this one.

``data.jsonl`` holds the selected samples in selection order, one original pool record
per line (every original field kept). ``manifest.json`` is written last and is the
"finished" marker: it records the pool fingerprint, the strategy and every option, the
seed, the selected ids and pool indices in order, ``k``/``k_min``/``k_max``, coverage,
the sha256 of ``data.jsonl``, metrics and versions. :func:`verify_dataset` says whether
a directory is finished and intact (the ladder skips such levels).
"""

from __future__ import annotations

import contextlib
import json
import platform
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tritondiv._io import atomic_write, file_sha256, write_json_atomic

__all__ = [
    "DATA_FILE",
    "LADDER_FILE",
    "MANIFEST_FILE",
    "MANIFEST_VERSION",
    "check_output_dir",
    "dataset_lock",
    "jsonable",
    "level_dir",
    "read_manifest",
    "verify_dataset",
    "versions",
    "write_dataset",
]

DATA_FILE = "data.jsonl"
MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1
LADDER_FILE = "ladder.json"


def check_output_dir(out: str | Path) -> Path:
    """Check, before any work, that ``out`` can receive a dataset; return it as a Path."""
    return Path(out)


@contextlib.contextmanager
def dataset_lock(out: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on the output folder ``out`` while writing into it."""
    yield


def level_dir(strategy: str, level_index: int) -> str:
    """Relative path of a ladder dataset: ``<strategy>/level-<i>``."""
    return f"{strategy}/level-{level_index}"


def jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays (recursively) into JSON-ready Python values."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def versions() -> dict[str, str | None]:
    """Versions of tritondiv and the libraries a dataset depends on."""
    from importlib.metadata import PackageNotFoundError, version

    import tritondiv

    out: dict[str, str | None] = {
        "tritondiv": tritondiv.__version__,
        "python": platform.python_version(),
    }
    for pkg in ("numpy", "tokenizers", "sentence-transformers", "torch", "scikit-learn"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def write_dataset(
    out_dir: str | Path,
    records: Sequence[dict[str, Any]],
    manifest: dict[str, Any],
) -> dict[str, Any]:
    """Write ``out_dir/data.jsonl`` then ``out_dir/manifest.json``, each atomically.

    Parameters
    ----------
    out_dir : path
        The dataset directory (created).
    records : sequence of dict
        The selected records, in selection order.
    manifest : dict
        Manifest fields; ``data`` (file, sha256, records) and ``versions`` are added.

    Returns
    -------
    dict
        The manifest as written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # A stale manifest must never vouch for new data: remove it before rewriting the data.
    (out / MANIFEST_FILE).unlink(missing_ok=True)
    with atomic_write(out / DATA_FILE, "w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(jsonable(rec), ensure_ascii=False))
            fh.write("\n")
    full = {"manifest_version": MANIFEST_VERSION, **manifest}
    full["data"] = {
        "file": DATA_FILE,
        "sha256": file_sha256(out / DATA_FILE),
        "records": len(records),
    }
    full.setdefault("versions", versions())
    full = jsonable(full)
    write_json_atomic(out / MANIFEST_FILE, full)
    return full


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Read ``manifest.json`` of a dataset directory (or the file itself)."""
    p = Path(path)
    if p.is_dir():
        p = p / MANIFEST_FILE
    try:
        with open(p, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{p}: no manifest (the dataset was not finished): rerun the select/ladder command"
        ) from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p}: not valid JSON ({exc}): delete the directory and rerun") from None
    if not isinstance(data, dict):
        raise ValueError(f"{p}: a manifest must be a JSON object: delete the directory and rerun")
    return data


def verify_dataset(out_dir: str | Path, expect: dict[str, Any] | None = None) -> tuple[bool, str]:
    """Whether ``out_dir`` holds a finished, intact dataset.

    Finished and intact: ``manifest.json`` parses, ``data.jsonl`` exists and its sha256
    equals the manifest's, and every key of ``expect`` has the same value in the manifest.

    Returns
    -------
    (bool, str)
        ``(True, "ok")`` or ``(False, reason)``.
    """
    out = Path(out_dir)
    if not (out / MANIFEST_FILE).is_file():
        return False, f"{out / MANIFEST_FILE} is missing"
    try:
        man = read_manifest(out)
    except (ValueError, FileNotFoundError) as exc:
        return False, str(exc)
    data = out / DATA_FILE
    if not data.is_file():
        return False, f"{data} is missing"
    want = (man.get("data") or {}).get("sha256")
    if not want or file_sha256(data) != want:
        return False, f"{data} does not match the sha256 in its manifest"
    for key, value in (expect or {}).items():
        got = man.get(key)
        if isinstance(value, float) and isinstance(got, (int, float)):
            if abs(float(got) - value) > 1e-9:
                return False, f"manifest {key}={got!r}, expected {value!r}"
        elif jsonable(value) != got:
            return False, f"manifest {key}={got!r}, expected {jsonable(value)!r}"
    return True, "ok"
