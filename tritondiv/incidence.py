"""The one object every strategy produces: a sample -> types incidence in CSR form."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Incidence", "is_scipy_sparse"]


def is_scipy_sparse(m: Any) -> bool:
    """Whether ``m`` is a scipy.sparse matrix or array (without importing scipy)."""
    if not type(m).__module__.startswith("scipy.sparse"):
        return False
    import scipy.sparse as sp

    return bool(sp.issparse(m))


@dataclass(frozen=True)
class Incidence:
    """A ragged sample -> types matrix: sample ``i`` carries ``types[offsets[i]:offsets[i+1]]``.

    Parameters
    ----------
    offsets : numpy.ndarray
        ``int64[n_samples + 1]``, starts at 0, non-decreasing, ends at ``len(types)``.
    types : numpy.ndarray
        ``int32[nnz]``, each in ``[0, n_types)``. Within a row, types are unique
        (constructors sort and de-duplicate them).
    n_types : int
        Number of distinct type ids the incidence may use (types never carried are allowed).
    labels : numpy.ndarray or None
        Optional label per type id (a token id, a tag string, a topic id), length ``n_types``.
    """

    offsets: np.ndarray
    types: np.ndarray
    n_types: int
    labels: np.ndarray | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        offsets = np.ascontiguousarray(self.offsets, dtype=np.int64)
        types = np.ascontiguousarray(self.types, dtype=np.int32)
        if offsets.ndim != 1 or offsets.size < 1:
            raise ValueError(
                "Incidence.offsets must be a 1-D int64 array of n_samples + 1 >= 1 entries"
            )
        if types.ndim != 1:
            raise ValueError("Incidence.types must be a 1-D int32 array")
        if offsets[0] != 0 or offsets[-1] != types.size or np.any(np.diff(offsets) < 0):
            raise ValueError(
                "Incidence.offsets must start at 0, be non-decreasing and end at len(types) "
                f"(got offsets[0]={offsets[0]}, offsets[-1]={offsets[-1]}, len(types)={types.size})"
            )
        n_types = int(self.n_types)
        if n_types < 0:
            raise ValueError(f"Incidence.n_types must be >= 0, got {n_types}")
        if types.size and (int(types.min()) < 0 or int(types.max()) >= n_types):
            raise ValueError(
                f"Incidence.types must lie in [0, n_types={n_types}), got range "
                f"[{int(types.min())}, {int(types.max())}]"
            )
        if self.labels is not None and len(self.labels) != n_types:
            raise ValueError(
                f"Incidence.labels has {len(self.labels)} entries for n_types={n_types}"
            )
        object.__setattr__(self, "offsets", offsets)
        object.__setattr__(self, "types", types)
        object.__setattr__(self, "n_types", n_types)

    @property
    def n_samples(self) -> int:
        """Number of samples (rows)."""
        return int(self.offsets.size - 1)

    @property
    def nnz(self) -> int:
        """Number of (sample, type) pairs."""
        return int(self.types.size)

    def row(self, i: int) -> np.ndarray:
        """Types carried by sample ``i``."""
        return self.types[self.offsets[i] : self.offsets[i + 1]]

    def row_lengths(self) -> np.ndarray:
        """Number of types per sample (``int64[n_samples]``)."""
        return np.diff(self.offsets)

    def support(self) -> np.ndarray:
        """Number of samples carrying each type (``int64[n_types]``)."""
        return np.bincount(self.types, minlength=self.n_types).astype(np.int64)

    def subset(self, rows: Sequence[int] | np.ndarray) -> Incidence:
        """The incidence restricted to ``rows`` (in that order); type ids are kept."""
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self.row_lengths()[rows]
        offsets = np.zeros(rows.size + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        if rows.size == 0:
            return Incidence(offsets, np.zeros(0, np.int32), self.n_types, self.labels)
        starts = np.repeat(self.offsets[rows], lengths)
        within = np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1], lengths)
        return Incidence(offsets, self.types[starts + within], self.n_types, self.labels)

    @classmethod
    def from_lists(
        cls,
        rows: Sequence[Sequence[int]],
        n_types: int | None = None,
        labels: np.ndarray | None = None,
    ) -> Incidence:
        """Build from one list of type ids per sample (sorted and de-duplicated per row)."""
        clean = [np.unique(np.asarray(r, dtype=np.int64)) for r in rows]
        lengths = np.array([c.size for c in clean], dtype=np.int64)
        offsets = np.zeros(len(clean) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        types = (
            np.concatenate(clean).astype(np.int32)
            if clean and offsets[-1]
            else np.zeros(0, np.int32)
        )
        if n_types is None:
            n_types = int(types.max()) + 1 if types.size else 0
        return cls(offsets, types, n_types, labels)

    @classmethod
    def from_labels(
        cls, labels_per_sample: Sequence[int] | np.ndarray, n_types: int | None = None
    ) -> Incidence:
        """Build a one-type-per-sample incidence (e.g. cluster ids); negative ids mean no type."""
        lab = np.asarray(labels_per_sample, dtype=np.int64)
        keep = lab >= 0
        offsets = np.zeros(lab.size + 1, dtype=np.int64)
        np.cumsum(keep, out=offsets[1:])
        types = lab[keep].astype(np.int32)
        if n_types is None:
            n_types = int(types.max()) + 1 if types.size else 0
        return cls(offsets, types, n_types)

    @classmethod
    def from_scipy(cls, m: Any, labels: np.ndarray | None = None) -> Incidence:
        """Build from a scipy.sparse matrix or array (csr, csc, coo, ...; rows = samples,
        columns = types): sample ``i`` carries type ``j`` when ``m[i, j]`` is nonzero.

        Any integer, boolean or floating data is accepted; explicitly stored zeros do not
        count. ``n_types`` is the number of columns.

        Raises
        ------
        TypeError
            When ``m`` is not a scipy.sparse matrix, or its data is not numeric.
        ValueError
            When ``m`` is not 2-D, has more than 2**31 - 1 columns, or holds NaN.
        """
        if not is_scipy_sparse(m):
            raise TypeError(
                f"Incidence.from_scipy: expected a scipy.sparse matrix, got {type(m).__name__}"
            )
        if len(m.shape) != 2:
            raise ValueError(f"Incidence.from_scipy: expected a 2-D matrix, got shape {m.shape}")
        kind = np.dtype(m.dtype).kind
        if kind not in "biuf":
            raise TypeError(
                f"Incidence.from_scipy: data must be integer, boolean or float, got {m.dtype}"
            )
        n_rows, n_cols = (int(d) for d in m.shape)
        if n_cols > np.iinfo(np.int32).max:
            raise ValueError(f"Incidence.from_scipy: {n_cols} columns do not fit int32 type ids")
        import scipy.sparse as sp

        csr = sp.csr_matrix(m, copy=True)  # copy: sorting and pruning must not touch ``m``
        if kind == "f" and np.isnan(csr.data).any():
            raise ValueError("Incidence.from_scipy: the matrix holds NaN (neither zero nor not)")
        csr.sum_duplicates()  # coo duplicates: one entry each (their sum decides)
        csr.eliminate_zeros()
        csr.sort_indices()
        offsets = np.asarray(csr.indptr, dtype=np.int64)
        types = np.asarray(csr.indices, dtype=np.int32)
        if offsets.size != n_rows + 1:
            raise ValueError("Incidence.from_scipy: malformed matrix (indptr length)")
        return cls(offsets, types, n_cols, labels)

    @classmethod
    def coerce(cls, incidence: Any, what: str = "incidence") -> Incidence:
        """``incidence`` as an :class:`Incidence`: an Incidence as is, a scipy.sparse matrix
        through :meth:`from_scipy`; anything else is a ``TypeError`` naming ``what``."""
        if isinstance(incidence, Incidence):
            return incidence
        if is_scipy_sparse(incidence):
            return cls.from_scipy(incidence)
        raise TypeError(
            f"{what}: expected a tritondiv.Incidence or a scipy.sparse matrix, got "
            f"{type(incidence).__name__} (build one with Incidence(offsets, types, n_types), "
            "Incidence.from_lists or Incidence.from_scipy)"
        )
