// Per-block reductions of the blocked dissimilarity kernels (tritondiv.kernels, CPU path).
// The caller computes a float32 block G = A·Bᵀ with BLAS; these functions fold the block
// into running per-row state without materializing the full N×M matrix:
//   * a running top-k per row (a min-heap of the k best (score, id) pairs, root = worst);
//   * a running argmax per row.
// Scores are affine in G: score(i, j) = alpha * G[i, j] + bias[j] (rows) or
// alpha * G[i, j] + bias[i] (columns, the transposed block for symmetric X·Xᵀ).
// Order: a pair (s, id) is better than (s', id') when s > s', or s == s' and id < id'.
// This is a strict total order, so the top-k set does not depend on the order in which
// candidates arrive, nor on the thread count (each row's heap is owned by one thread).
// Plain C++17, no Python headers.
#pragma once

#include <cstdint>
#include <limits>

#include "common.hpp"

namespace tritondiv::kernels {

// Id stored in an empty heap slot (finalize turns it into -1).
constexpr std::int64_t kEmptyId = std::numeric_limits<std::int64_t>::max();

// Dense row-major float32 block view.
struct Block {
    const float* data = nullptr;
    std::int64_t rows = 0;
    std::int64_t cols = 0;
};

// Running top-k state of `n` rows: vals[n*k], ids[n*k]; empty slots hold (-inf, kEmptyId).
struct TopkState {
    float* vals = nullptr;
    std::int64_t* ids = nullptr;
    std::int64_t n = 0;
    std::int64_t k = 0;
};

// Folds a block into the heaps. Rows: state rows [row0, row0 + g.rows) receive candidate
// ids col0 + j with score alpha * G[i, j] + (col_bias ? col_bias[j] : 0); with
// exclude_self, pairs with row0 + i == col0 + j are skipped. With transposed_too (an
// off-diagonal block of X·Xᵀ: the two ranges must not overlap), state rows
// [col0, col0 + g.cols) also receive candidate ids row0 + i with score
// alpha * G[i, j] + (row_bias ? row_bias[i] : 0). One OpenMP region per call.
// Throws std::invalid_argument on bad ranges.
void topk_merge_block(const Block& g, std::int64_t row0, std::int64_t col0, float alpha,
                      const float* col_bias, const float* row_bias, bool exclude_self,
                      bool transposed_too, TopkState& st);

// Sorts each row best-first and turns empty slots into id -1 (value stays -inf).
void topk_finalize(TopkState& st);

// Running argmax of rows [row0, row0 + g.rows): best_val/best_id (length n) are updated
// with score = alpha * G[i, j] + (col_bias ? col_bias[j] : 0), candidate ids col0 + j.
// Ties keep the smaller id.
void argmax_merge_rows(const Block& g, std::int64_t row0, std::int64_t col0, float alpha,
                       const float* col_bias, float* best_val, std::int64_t* best_id,
                       std::int64_t n);

}  // namespace tritondiv::kernels
