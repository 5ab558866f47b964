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
    offsets: npt.NDArray[np.int64],
    ids: npt.NDArray[np.int32],
    vocab_size: int,
    n: int,
    counts: npt.NDArray[np.int64] | None = None,
) -> tuple[int, int]: ...  # (distinct, total); counts only speeds up n = 2
def distinct_ngrams_per_sample(
    offsets: npt.NDArray[np.int64], ids: npt.NDArray[np.int32], vocab_size: int, n: int
) -> npt.NDArray[np.int64]: ...
def entropy_nats(counts: npt.NDArray[np.int64]) -> float: ...
def ngram_key(gram: npt.NDArray[np.int32]) -> int: ...

# ---- dissimilarity kernels (python/bind_kernels.cpp) ----
# g: float32[rows, cols] block of A·Bᵀ. The running state arrays are updated in place:
# top-k vals float32[n, k] / ids int64[n, k] (empty slots: -inf / int64 max, min-heaps per
# row), argmax best_val float32[n] / best_id int64[n]. Ties: the smaller id wins.
def topk_merge_block(
    g: npt.NDArray[np.float32],
    row0: int,
    col0: int,
    alpha: float,
    col_bias: npt.NDArray[np.float32] | None,
    row_bias: npt.NDArray[np.float32] | None,
    exclude_self: bool,
    transposed_too: bool,
    vals: npt.NDArray[np.float32],
    ids: npt.NDArray[np.int64],
) -> None: ...
def topk_finalize(vals: npt.NDArray[np.float32], ids: npt.NDArray[np.int64]) -> None: ...
def argmax_merge_rows(
    g: npt.NDArray[np.float32],
    row0: int,
    col0: int,
    alpha: float,
    col_bias: npt.NDArray[np.float32] | None,
    best_val: npt.NDArray[np.float32],
    best_id: npt.NDArray[np.int64],
) -> None: ...
