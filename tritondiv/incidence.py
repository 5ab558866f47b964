"""The one object every strategy produces: a sample -> types incidence in CSR form."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Incidence"]


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
