// The selection engine: reverse greedy type pruning, balanced greedy over type counts,
// k-center greedy (Gonzalez), facility location lazy greedy and a DEITA-style threshold
// filter. Plain C++17; every function validates its input and throws std::invalid_argument
// with a message naming the bad value.
#pragma once

#include <cstdint>
#include <vector>

#include "common.hpp"

namespace tritondiv {

// ---- deterministic random numbers (identical on every platform) ------------------------
struct SplitMix64 {
    std::uint64_t state;
    explicit SplitMix64(std::uint64_t seed) : state(seed) {}
    std::uint64_t next() {
        std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    }
    // Uniform-ish in [0, bound) (multiply-shift; bias < bound / 2^64).
    std::uint64_t below(std::uint64_t bound) {
        return static_cast<std::uint64_t>((static_cast<unsigned __int128>(next()) * bound) >> 64);
    }
};

// rank[i] = position of i in a seeded Fisher-Yates permutation of 0..n-1 (a tie order).
std::vector<std::int64_t> seeded_ranks(std::int64_t n, std::uint64_t seed);

// ---- 1. reverse greedy pruning ---------------------------------------------------------
struct PruneOut {
    std::int64_t k_max = 0;                    // types with support > 0 in the full pool
    std::vector<std::int32_t> removal_order;   // k_max type ids, first removed first
    std::vector<std::int64_t> removal_support; // support of each when it was removed
    std::vector<std::int64_t> sample_step;     // step that removed each sample; k_max = never
    std::vector<std::int64_t> pool_order;      // samples by removal step descending, index asc
    std::vector<std::int64_t> pool_sizes;      // k_max + 1 entries: |S_k| for k = 0..k_max
};
PruneOut prune_types(const CsrView<std::int32_t>& inc, std::int64_t n_types, std::uint64_t seed);

// ---- 2. balanced greedy ------------------------------------------------------------------
enum class Concave : int { Log1p = 0, Sqrt = 1, Min = 2 };

struct GreedyOut {
    std::vector<std::int64_t> indices;    // selection order
    std::vector<double> gains;            // marginal gain of each pick (weighted)
    std::vector<std::int64_t> type_counts;  // n_types entries
    std::int64_t evaluations = 0;         // gain evaluations
};
// Chooses n of `candidates` (sample ids, any order, no duplicates) maximizing
// sum_t g(c_t). weights: empty or one non-negative finite weight per sample (all N).
// epsilon > 0 switches to stochastic greedy. Ties: the seeded sample permutation.
GreedyOut balanced_greedy(const CsrView<std::int32_t>& inc, std::int64_t n_types,
                          Span<const std::int64_t> candidates, std::int64_t n, Concave g,
                          double quota, Span<const double> weights, double epsilon,
                          std::uint64_t seed);

// ---- 4. k-center greedy ------------------------------------------------------------------
struct KCenterOut {
    std::vector<std::int64_t> indices;  // selection order (indices[0] = first)
    std::vector<double> sq_radii;       // squared L2 covering radius after each pick
    std::int64_t evaluations = 0;       // point-center distances screened
};
// X: N x d row-major, float32 (is_f16 = false) or IEEE half bits (is_f16 = true; converted
// to a float32 copy first).
// Exact Gonzalez on squared L2 distances accumulated in double; ties by lowest index;
// already selected points are never picked again.
KCenterOut kcenter_greedy(const void* X, bool is_f16, std::int64_t N, std::int64_t d,
                          std::int64_t n, std::int64_t first);

// ---- 5. facility location ----------------------------------------------------------------
struct FacilityOut {
    std::vector<std::int64_t> indices;
    std::vector<double> gains;
    double objective = 0.0;
    std::int64_t evaluations = 0;
};
// Sparse: row j of the CSR (indptr int64, indices int32 in [0, n_cols), data float64 >= 0)
// lists the points candidate j covers and their similarities (apricot's convention).
FacilityOut facility_location_csr(Span<const std::int64_t> indptr, Span<const std::int32_t> indices,
                                  Span<const double> data, std::int64_t n_cols, std::int64_t n);
// Dense: G is rows x cols row-major float64, same convention (row j = candidate j).
FacilityOut facility_location_dense(const double* G, std::int64_t rows, std::int64_t cols,
                                    std::int64_t n);

// ---- 6. threshold filter -----------------------------------------------------------------
struct ThresholdOut {
    std::vector<std::int64_t> indices;
    std::int64_t walked = 0;  // samples examined
};
// Xn: N x d unit rows (float32). Walks `order`, keeps a sample when its cosine similarity
// (double accumulation) to every kept sample is <= tau, stops at n kept (may keep fewer).
ThresholdOut threshold_filter(const float* Xn, std::int64_t N, std::int64_t d, std::int64_t n,
                              double tau, Span<const std::int64_t> order);

}  // namespace tritondiv
