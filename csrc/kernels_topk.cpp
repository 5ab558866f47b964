// Per-block top-k / argmax reductions of the blocked CPU dissimilarity kernels.
// See topk_kernels.hpp for the contract.
#include <algorithm>
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

}  // namespace

void topk_merge_rows(const Block& g, std::int64_t row0, std::int64_t col0, float alpha,
                     const float* col_bias, bool exclude_self, TopkState& st) {
    check_block(g, "topk_merge_rows");
    if (row0 < 0 || row0 + g.rows > st.n)
        throw std::invalid_argument("topk_merge_rows: rows [" + std::to_string(row0) + ", " +
                                    std::to_string(row0 + g.rows) + ") outside the state's " +
                                    std::to_string(st.n) + " rows");
    if (st.k <= 0) return;
    const std::int64_t rows = g.rows, cols = g.cols, k = st.k;
#if TRITONDIV_HAVE_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (std::int64_t i = 0; i < rows; ++i) {
        const float* gi = g.data + i * cols;
        float* hv = st.vals + (row0 + i) * k;
        std::int64_t* hi = st.ids + (row0 + i) * k;
        float thr = hv[0];
        const std::int64_t self = exclude_self ? row0 + i - col0 : -1;
        for (std::int64_t j = 0; j < cols; ++j) {
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

void topk_merge_cols(const Block& g, std::int64_t row0, std::int64_t col0, float alpha,
                     const float* row_bias, bool exclude_self, TopkState& st) {
    check_block(g, "topk_merge_cols");
    if (col0 < 0 || col0 + g.cols > st.n)
        throw std::invalid_argument("topk_merge_cols: rows [" + std::to_string(col0) + ", " +
                                    std::to_string(col0 + g.cols) + ") outside the state's " +
                                    std::to_string(st.n) + " rows");
    if (st.k <= 0 || g.cols == 0) return;
    const std::int64_t rows = g.rows, cols = g.cols, k = st.k;
    // Each thread owns a contiguous range of columns (= state rows) and walks every block
    // row over it: contiguous reads, one owner per heap.
#if TRITONDIV_HAVE_OPENMP
#pragma omp parallel
#endif
    {
        int nt = 1, t = 0;
#if TRITONDIV_HAVE_OPENMP
        nt = omp_get_num_threads();
        t = omp_get_thread_num();
#endif
        const std::int64_t chunk = (cols + nt - 1) / nt;
        const std::int64_t c0 = std::min<std::int64_t>(cols, t * chunk);
        const std::int64_t c1 = std::min<std::int64_t>(cols, c0 + chunk);
        std::vector<float> thr(static_cast<std::size_t>(std::max<std::int64_t>(c1 - c0, 0)));
        for (std::int64_t j = c0; j < c1; ++j) thr[j - c0] = st.vals[(col0 + j) * k];
        for (std::int64_t i = 0; i < rows; ++i) {
            const float* gi = g.data + i * cols;
            const float b = row_bias ? row_bias[i] : 0.0f;
            const std::int64_t id = row0 + i;
            for (std::int64_t j = c0; j < c1; ++j) {
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
}

void topk_finalize(TopkState& st) {
    const std::int64_t n = st.n, k = st.k;
    if (k <= 0) return;
#if TRITONDIV_HAVE_OPENMP
#pragma omp parallel
#endif
    {
        std::vector<std::int64_t> order(static_cast<std::size_t>(k));
        std::vector<float> tv(static_cast<std::size_t>(k));
        std::vector<std::int64_t> ti(static_cast<std::size_t>(k));
#if TRITONDIV_HAVE_OPENMP
#pragma omp for schedule(static)
#endif
        for (std::int64_t r = 0; r < n; ++r) {
            float* hv = st.vals + r * k;
            std::int64_t* hi = st.ids + r * k;
            std::iota(order.begin(), order.end(), 0);
            std::sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
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
    if (row0 < 0 || row0 + g.rows > n)
        throw std::invalid_argument("argmax_merge_rows: rows [" + std::to_string(row0) + ", " +
                                    std::to_string(row0 + g.rows) + ") outside " +
                                    std::to_string(n) + " rows");
    const std::int64_t rows = g.rows, cols = g.cols;
#if TRITONDIV_HAVE_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (std::int64_t i = 0; i < rows; ++i) {
        const float* gi = g.data + i * cols;
        float bv = best_val[row0 + i];
        std::int64_t bj = -1;
        for (std::int64_t j = 0; j < cols; ++j) {
            const float v = alpha * gi[j] + (col_bias ? col_bias[j] : 0.0f);
            if (v > bv) {
                bv = v;
                bj = j;
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
