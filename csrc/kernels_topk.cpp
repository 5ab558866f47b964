// Per-block top-k / argmax reductions of the blocked CPU dissimilarity kernels.
// See topk_kernels.hpp for the contract.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "topk_kernels.hpp"

namespace tritondiv::kernels {

namespace {

// (v, id) strictly worse than (w, jd)?
inline bool worse(float v, std::int64_t id, float w, std::int64_t jd) {
    return v < w || (v == w && id > jd);
}

// Replace the root (worst) of a min-heap of size k by (v, id) and sift down.
inline void heap_replace_root(float* hv, std::int64_t* hi, std::int64_t k, float v,
                              std::int64_t id) {
    std::int64_t pos = 0;
    for (;;) {
        std::int64_t l = 2 * pos + 1;
        if (l >= k) break;
        std::int64_t r = l + 1;
        std::int64_t c = (r < k && worse(hv[r], hi[r], hv[l], hi[l])) ? r : l;
        if (!worse(hv[c], hi[c], v, id)) break;  // child not worse than the new item
        hv[pos] = hv[c];
        hi[pos] = hi[c];
        pos = c;
    }
    hv[pos] = v;
    hi[pos] = id;
}

void check_block(const Block& g, const char* what) {
    if (g.rows < 0 || g.cols < 0 || (g.rows * g.cols > 0 && g.data == nullptr))
        throw std::invalid_argument(std::string(what) + ": invalid block");
}

// Multiversioned (AVX2 / baseline) scans, picked at load time on x86-64 with GCC.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define TRITONDIV_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define TRITONDIV_CLONES
#endif

constexpr std::int64_t kChunk = 16;

// Blocks below this many scores are reduced by one thread. A reduction pass is ~1/20 of
// the block's sgemm, and on a loaded machine each OpenMP region can cost a scheduler
// time slice, so only large blocks (the 4096 x 4096 top-k blocks) go parallel.
constexpr std::int64_t kParallelMin = std::int64_t{1} << 22;

// True when some j in [0, kChunk) has alpha * g[j] + bias[j] >= thr (branch-free, SIMD).
TRITONDIV_CLONES bool chunk_any_ge(const float* g, const float* bias, float alpha, float thr) {
    int any = 0;
    if (bias) {
        for (std::int64_t j = 0; j < kChunk; ++j) any |= (alpha * g[j] + bias[j] >= thr);
    } else {
        for (std::int64_t j = 0; j < kChunk; ++j) any |= (alpha * g[j] >= thr);
    }
    return any != 0;
}

// True when some j in [0, kChunk) has alpha * g[j] + b >= thr[j].
TRITONDIV_CLONES bool chunk_any_ge_vec(const float* g, float b, float alpha, const float* thr) {
    int any = 0;
    for (std::int64_t j = 0; j < kChunk; ++j) any |= (alpha * g[j] + b >= thr[j]);
    return any != 0;
}

}  // namespace

namespace {

constexpr std::int64_t kColStrip = 128;

// Row i of the block into the heap of state row row0 + i.
inline void merge_row(const Block& g, std::int64_t i, std::int64_t row0, std::int64_t col0,
                      float alpha, const float* col_bias, bool exclude_self, TopkState& st) {
    const std::int64_t cols = g.cols, k = st.k;
    const float* gi = g.data + i * cols;
    float* hv = st.vals + (row0 + i) * k;
    std::int64_t* hi = st.ids + (row0 + i) * k;
    float thr = hv[0];
    const std::int64_t self = exclude_self ? row0 + i - col0 : -1;
    for (std::int64_t j0 = 0; j0 < cols; j0 += kChunk) {
        const std::int64_t j1 = std::min(cols, j0 + kChunk);
        if (j1 - j0 == kChunk &&
            !chunk_any_ge(gi + j0, col_bias ? col_bias + j0 : nullptr, alpha, thr))
            continue;
        for (std::int64_t j = j0; j < j1; ++j) {
            const float v = alpha * gi[j] + (col_bias ? col_bias[j] : 0.0f);
            if (v < thr) continue;
            const std::int64_t id = col0 + j;
            if (j == self) continue;
            if (!worse(hv[0], hi[0], v, id)) continue;
            heap_replace_root(hv, hi, k, v, id);
            thr = hv[0];
        }
    }
}

// Column strip s (kColStrip columns) of the block into the heaps of state rows col0 + j:
// one owner per heap, contiguous reads along each block row.
inline void merge_strip(const Block& g, std::int64_t s, std::int64_t row0, std::int64_t col0,
                        float alpha, const float* row_bias, bool exclude_self, TopkState& st) {
    const std::int64_t rows = g.rows, cols = g.cols, k = st.k;
    const std::int64_t c0 = s * kColStrip;
    const std::int64_t c1 = std::min(cols, c0 + kColStrip);
    float thr[kColStrip];
    for (std::int64_t j = c0; j < c1; ++j) thr[j - c0] = st.vals[(col0 + j) * k];
    for (std::int64_t i = 0; i < rows; ++i) {
        const float* gi = g.data + i * cols;
        const float b = row_bias ? row_bias[i] : 0.0f;
        const std::int64_t id = row0 + i;
        for (std::int64_t j = c0; j < c1; ++j) {
            if ((j - c0) % kChunk == 0 && j + kChunk <= c1 &&
                !chunk_any_ge_vec(gi + j, b, alpha, thr + (j - c0))) {
                j += kChunk - 1;
                continue;
            }
            const float v = alpha * gi[j] + b;
            if (v < thr[j - c0]) continue;
            if (exclude_self && id == col0 + j) continue;
            float* hv = st.vals + (col0 + j) * k;
            std::int64_t* hi = st.ids + (col0 + j) * k;
            if (!worse(hv[0], hi[0], v, id)) continue;
            heap_replace_root(hv, hi, k, v, id);
            thr[j - c0] = hv[0];
        }
    }
}

// [start, start + len) must lie inside the state's n rows (tested without overflow; the
// message names the start and the length, never a sum that could wrap).
void check_range(std::int64_t start, std::int64_t len, std::int64_t n, const char* what) {
    if (!range_inside(start, len, n))
        throw std::invalid_argument(std::string(what) + ": state rows from " + std::to_string(start) +
                                    " (" + std::to_string(len) + " rows) outside the state's " +
                                    std::to_string(n) + " rows");
}

// Candidate ids col0 .. col0 + len - 1 must be >= 0 and below kEmptyId (the empty-slot id).
void check_ids(std::int64_t col0, std::int64_t len, const char* what) {
    if (col0 < 0 || len > kEmptyId - col0)
        throw std::invalid_argument(std::string(what) + ": candidate ids from " + std::to_string(col0) +
                                    " (" + std::to_string(len) +
                                    " columns) must lie in [0, 2^63 - 1)");
}

}  // namespace

void topk_merge_block(const Block& g, std::int64_t row0, std::int64_t col0, float alpha,
                      const float* col_bias, const float* row_bias, bool exclude_self,
                      bool transposed_too, TopkState& st) {
    check_block(g, "topk_merge_block");
    check_range(row0, g.rows, st.n, "topk_merge_block (rows)");
    check_ids(col0, g.cols, "topk_merge_block");
    if (transposed_too) {
        check_range(col0, g.cols, st.n, "topk_merge_block (columns)");
        if (row0 < col0 + g.cols && col0 < row0 + g.rows)
            throw std::invalid_argument(
                "topk_merge_block: with transposed_too the row range and the column range "
                "must not overlap (use it for off-diagonal blocks only)");
    }
    if (st.k <= 0 || g.rows == 0 || g.cols == 0) return;
    const std::int64_t rows = g.rows;
    const std::int64_t strips = transposed_too ? (g.cols + kColStrip - 1) / kColStrip : 0;
    // One parallel region per block: the row heaps [row0, row0 + rows) and the column heaps
    // [col0, col0 + cols) are disjoint, so both loops share the region without a barrier.
    // Dynamic schedules: a preempted thread does not hold the others up.
#if TRITONDIV_HAVE_OPENMP
#pragma omp parallel if (rows * g.cols >= kParallelMin)
#endif
    {
#if TRITONDIV_HAVE_OPENMP
#pragma omp for schedule(dynamic, 16) nowait
#endif
        for (std::int64_t i = 0; i < rows; ++i)
            merge_row(g, i, row0, col0, alpha, col_bias, exclude_self, st);
#if TRITONDIV_HAVE_OPENMP
#pragma omp for schedule(dynamic, 1) nowait
#endif
        for (std::int64_t s = 0; s < strips; ++s)
            merge_strip(g, s, row0, col0, alpha, row_bias, false, st);
    }
}

void topk_finalize(TopkState& st) {
    const std::int64_t n = st.n, k = st.k;
    if (k <= 0 || n <= 0) return;
    // Per-thread scratch rows, allocated before the region (a failed allocation must not
    // happen inside it).
    int T = 1;
#if TRITONDIV_HAVE_OPENMP
    T = static_cast<int>(std::min<std::int64_t>(omp_get_max_threads(), n));
#endif
    const auto uk = static_cast<std::size_t>(k);
    std::vector<std::int64_t> order_all(static_cast<std::size_t>(T) * uk);
    std::vector<float> tv_all(static_cast<std::size_t>(T) * uk);
    std::vector<std::int64_t> ti_all(static_cast<std::size_t>(T) * uk);
#if TRITONDIV_HAVE_OPENMP
#pragma omp parallel num_threads(T)
#endif
    {
        std::size_t tid = 0;
#if TRITONDIV_HAVE_OPENMP
        tid = static_cast<std::size_t>(omp_get_thread_num());
#endif
        std::int64_t* order = order_all.data() + tid * uk;
        float* tv = tv_all.data() + tid * uk;
        std::int64_t* ti = ti_all.data() + tid * uk;
#if TRITONDIV_HAVE_OPENMP
#pragma omp for schedule(static)
#endif
        for (std::int64_t r = 0; r < n; ++r) {
            float* hv = st.vals + r * k;
            std::int64_t* hi = st.ids + r * k;
            std::iota(order, order + k, 0);
            // Best first: a strict weak order even when the caller's state holds NaN (NaN
            // slots go last, by id); `worse` alone is not one with NaN, and std::sort may
            // then read outside the range.
            std::sort(order, order + k, [&](std::int64_t a, std::int64_t b) {
                const bool na = std::isnan(hv[a]), nb = std::isnan(hv[b]);
                if (na || nb) return na != nb ? nb : hi[a] < hi[b];
                return worse(hv[b], hi[b], hv[a], hi[a]);
            });
            for (std::int64_t q = 0; q < k; ++q) {
                tv[q] = hv[order[q]];
                ti[q] = hi[order[q]];
            }
            for (std::int64_t q = 0; q < k; ++q) {
                hv[q] = tv[q];
                hi[q] = ti[q] == kEmptyId ? -1 : ti[q];
            }
        }
    }
}

void argmax_merge_rows(const Block& g, std::int64_t row0, std::int64_t col0, float alpha,
                       const float* col_bias, float* best_val, std::int64_t* best_id,
                       std::int64_t n) {
    check_block(g, "argmax_merge_rows");
    check_range(row0, g.rows, n, "argmax_merge_rows");
    check_ids(col0, g.cols, "argmax_merge_rows");
    const std::int64_t rows = g.rows, cols = g.cols;
#if TRITONDIV_HAVE_OPENMP
#pragma omp parallel for schedule(dynamic, 16) if (rows * cols >= kParallelMin)
#endif
    for (std::int64_t i = 0; i < rows; ++i) {
        const float* gi = g.data + i * cols;
        float bv = best_val[row0 + i];
        std::int64_t bj = -1;
        for (std::int64_t j0 = 0; j0 < cols; j0 += kChunk) {
            const std::int64_t j1 = std::min(cols, j0 + kChunk);
            // skip chunks with nothing >= the best so far (SIMD test; > is checked below)
            if (j1 - j0 == kChunk &&
                !chunk_any_ge(gi + j0, col_bias ? col_bias + j0 : nullptr, alpha, bv))
                continue;
            for (std::int64_t j = j0; j < j1; ++j) {
                const float v = alpha * gi[j] + (col_bias ? col_bias[j] : 0.0f);
                if (v > bv) {
                    bv = v;
                    bj = j;
                }
            }
        }
        // Strictly better only: blocks arrive in increasing column order, so a tie keeps
        // the earlier (smaller) id.
        if (bj >= 0) {
            best_val[row0 + i] = bv;
            best_id[row0 + i] = col0 + bj;
        }
    }
}

}  // namespace tritondiv::kernels
