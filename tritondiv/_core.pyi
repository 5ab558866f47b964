# Stubs of the compiled binding layer tritondiv._core. Every array argument must already be
# a C-contiguous numpy array of the stated dtype; the Python facade coerces before calling.
import numpy as np
import numpy.typing as npt

openmp: bool

def num_threads() -> int: ...
def set_num_threads(n: int) -> None: ...

# ---- token statistics (python/bind_token_stats.cpp) ----
# offsets: int64[N+1], ids: int32[nnz] with ids in [0, vocab_size); ValueError otherwise.
def token_counts(
    offsets: npt.NDArray[np.int64], ids: npt.NDArray[np.int32], vocab_size: int
) -> tuple[
    npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int32]
]: ...  # (counts[V], df[V], lengths[N], distinct[N])
def band_incidence(
    offsets: npt.NDArray[np.int64],
    ids: npt.NDArray[np.int32],
    vocab_size: int,
    counts: npt.NDArray[np.int64],
    lo: int,
    hi: int,
) -> tuple[
    npt.NDArray[np.int64], npt.NDArray[np.int32], npt.NDArray[np.int32]
]: ...  # (incidence offsets[N+1], types[nnz], band token ids[B])
def distinct_ngrams(
    offsets: npt.NDArray[np.int64], ids: npt.NDArray[np.int32], vocab_size: int, n: int
) -> tuple[int, int]: ...  # (distinct, total)
def distinct_ngrams_per_sample(
    offsets: npt.NDArray[np.int64], ids: npt.NDArray[np.int32], vocab_size: int, n: int
) -> npt.NDArray[np.int64]: ...
def entropy_nats(counts: npt.NDArray[np.int64]) -> float: ...
def ngram_key(gram: npt.NDArray[np.int32]) -> int: ...
