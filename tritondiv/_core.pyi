# Stubs of the compiled binding layer tritondiv._core. Every array argument must already be
# a C-contiguous numpy array of the stated dtype; the Python facade coerces before calling.
import numpy as np
import numpy.typing as npt

openmp: bool

def num_threads() -> int: ...
def max_threads() -> int: ...  # max(256, 4 x hardware threads)
def set_num_threads(n: int) -> None: ...  # n <= 0: default; ValueError above max_threads()

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

# ---- selection engine (python/bind_select.cpp) ----
# Incidence: offsets int64[N+1], types int32[nnz] in [0, n_types). ValueError on bad input.
def prune_types(
    offsets: npt.NDArray[np.int64], types: npt.NDArray[np.int32], n_types: int, seed: int
) -> tuple[
    int,
    npt.NDArray[np.int32],
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
]: ...  # (k_max, removal_order[k_max], removal_support[k_max], sample_step[N],

#          pool_order[N], pool_sizes[k_max + 1])
def balanced_greedy(
    offsets: npt.NDArray[np.int64],
    types: npt.NDArray[np.int32],
    n_types: int,
    candidates: npt.NDArray[np.int64],
    n: int,
    g: int,  # 0 log1p, 1 sqrt, 2 min(c, quota)
    quota: float,
    weights: npt.NDArray[np.float64],  # empty = unweighted, else float64[N]
    epsilon: float,  # <= 0: exact lazy greedy; in (0, 1): stochastic greedy
    seed: int,
) -> tuple[
    npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int64], int
]: ...  # (indices, gains, type_counts[n_types], evaluations)
def kcenter_greedy(
    X: npt.NDArray[np.float32] | npt.NDArray[np.float16], n: int, first: int
) -> tuple[
    npt.NDArray[np.int64], npt.NDArray[np.float64], int
]: ...  # (indices, squared L2 radius after each pick, distance evaluations)
def facility_location_csr(
    indptr: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int32],
    data: npt.NDArray[np.float64],
    n_cols: int,
    n: int,
) -> tuple[
    npt.NDArray[np.int64], npt.NDArray[np.float64], float, int
]: ...  # (indices, gains, objective, evaluations); row j = what candidate j covers
def facility_location_dense(
    graph: npt.NDArray[np.float64], n: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], float, int]: ...
def threshold_filter(
    X: npt.NDArray[np.float32], n: int, tau: float, order: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], int]: ...  # (kept indices, samples walked); X unit rows
