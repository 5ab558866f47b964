// Facility location lazy greedy (sparse CSR and dense) and the DEITA-style threshold filter.
#include <algorithm>
#include <cmath>
#include <queue>
#include <stdexcept>
#include <string>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define TRITONDIV_X86 1
#else
#define TRITONDIV_X86 0
#endif

#include "select.hpp"

namespace tritondiv {

namespace {

struct FlEntry {
    double gain;
    std::int64_t idx;
    std::int64_t stamp;
};
// max-heap: larger gain first, then lower index
struct FlLess {
    bool operator()(const FlEntry& a, const FlEntry& b) const {
        return a.gain != b.gain ? a.gain < b.gain : a.idx > b.idx;
    }
};

// Exact lazy greedy given gain(j) (which reads `best`) and commit(j) (which updates it).
template <class Gain, class Commit>
FacilityOut lazy_greedy(std::int64_t rows, std::int64_t n, Gain&& gain, Commit&& commit) {
    FacilityOut out;
    out.indices.reserve(static_cast<std::size_t>(n));
    out.gains.reserve(static_cast<std::size_t>(n));
    std::vector<FlEntry> heap(static_cast<std::size_t>(rows));
#if TRITONDIV_HAVE_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (std::int64_t j = 0; j < rows; ++j) heap[j] = FlEntry{gain(j), j, 0};
    out.evaluations = rows;
    FlLess less;
    std::make_heap(heap.begin(), heap.end(), less);
    std::int64_t step = 0;
    while (step < n) {
        std::pop_heap(heap.begin(), heap.end(), less);
        FlEntry e = heap.back();
        heap.pop_back();
        if (e.stamp == step) {
            out.indices.push_back(e.idx);
            out.gains.push_back(e.gain);
            out.objective += e.gain;
            commit(e.idx);
            ++step;
            continue;
        }
        e.gain = gain(e.idx);
        e.stamp = step;
        ++out.evaluations;
        heap.push_back(e);
        std::push_heap(heap.begin(), heap.end(), less);
    }
    return out;
}

void check_n(std::int64_t n, std::int64_t rows) {
    if (n < 0 || n > rows)
        throw std::invalid_argument("n = " + std::to_string(n) + " must lie in [0, " +
                                    std::to_string(rows) + "] (the number of candidates)");
}

}  // namespace

FacilityOut facility_location_csr(Span<const std::int64_t> indptr, Span<const std::int32_t> indices,
                                  Span<const double> data, std::int64_t n_cols, std::int64_t n) {
    CsrView<std::int32_t> csr{indptr, indices};
    check_csr(csr, "graph");
    if (data.size != indices.size)
        throw std::invalid_argument("graph: data has " + std::to_string(data.size) + " entries, indices " +
                                    std::to_string(indices.size));
    const auto rows = static_cast<std::int64_t>(csr.rows());
    check_n(n, rows);
    if (n_cols < 0) throw std::invalid_argument("n_cols must be >= 0, got " + std::to_string(n_cols));
    for (std::size_t e = 0; e < indices.size; ++e) {
        if (indices[e] < 0 || indices[e] >= n_cols)
            throw std::invalid_argument("graph: column index " + std::to_string(indices[e]) +
                                        " outside [0, " + std::to_string(n_cols) + ")");
        if (!std::isfinite(data[e]))
            throw std::invalid_argument("graph: similarity at entry " + std::to_string(e) +
                                        " is not finite (NaN/inf); pass finite similarities");
        if (data[e] < 0)
            throw std::invalid_argument("graph: similarity " + std::to_string(data[e]) + " at entry " +
                                        std::to_string(e) +
                                        " is negative; facility location needs similarities >= 0 "
                                        "(e.g. clip, or use (1 + cos) / 2)");
    }
    std::vector<double> best(static_cast<std::size_t>(n_cols), 0.0);
    auto gain = [&](std::int64_t j) {
        double s = 0.0;
        for (auto e = indptr[j]; e < indptr[j + 1]; ++e) {
            const double b = best[indices[e]];
            s += std::max(data[e], b) - b;
        }
        return s;
    };
    auto commit = [&](std::int64_t j) {
        for (auto e = indptr[j]; e < indptr[j + 1]; ++e) {
            auto& b = best[indices[e]];
            if (data[e] > b) b = data[e];
        }
    };
    return lazy_greedy(rows, n, gain, commit);
}

FacilityOut facility_location_dense(const double* G, std::int64_t rows, std::int64_t cols,
                                    std::int64_t n) {
    check_n(n, rows);
    const auto total = rows * cols;
    for (std::int64_t e = 0; e < total; ++e) {
        if (!std::isfinite(G[e]))
            throw std::invalid_argument("graph: similarity at (" + std::to_string(e / cols) + ", " +
                                        std::to_string(e % cols) + ") is not finite (NaN/inf)");
        if (G[e] < 0)
            throw std::invalid_argument("graph: similarity " + std::to_string(G[e]) + " at (" +
                                        std::to_string(e / cols) + ", " + std::to_string(e % cols) +
                                        ") is negative; facility location needs similarities >= 0");
    }
    std::vector<double> best(static_cast<std::size_t>(cols), 0.0);
    auto gain = [&](std::int64_t j) {
        const double* r = G + j * cols;
        double s = 0.0;
        for (std::int64_t k = 0; k < cols; ++k) s += std::max(r[k], best[k]) - best[k];
        return s;
    };
    auto commit = [&](std::int64_t j) {
        const double* r = G + j * cols;
        for (std::int64_t k = 0; k < cols; ++k) best[k] = std::max(best[k], r[k]);
    };
    return lazy_greedy(rows, n, gain, commit);
}

// ---- threshold filter ----------------------------------------------------------------------

namespace {

double dot_scalar(const float* a, const float* b, std::int64_t d) {
    double s = 0.0;
    for (std::int64_t k = 0; k < d; ++k) s += static_cast<double>(a[k]) * static_cast<double>(b[k]);
    return s;
}
#if TRITONDIV_X86
__attribute__((target("avx2,fma"))) double dot_avx2(const float* a, const float* b, std::int64_t d) {
    __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
    std::int64_t k = 0;
    for (; k + 8 <= d; k += 8) {
        const __m256 x = _mm256_loadu_ps(a + k), y = _mm256_loadu_ps(b + k);
        acc0 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(x)),
                               _mm256_cvtps_pd(_mm256_castps256_ps128(y)), acc0);
        acc1 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)),
                               _mm256_cvtps_pd(_mm256_extractf128_ps(y, 1)), acc1);
    }
    const __m256d v = _mm256_add_pd(acc0, acc1);
    const __m128d lo = _mm256_castpd256_pd128(v), hi = _mm256_extractf128_pd(v, 1);
    const __m128d s2 = _mm_add_pd(lo, hi);
    double s = _mm_cvtsd_f64(_mm_add_sd(s2, _mm_unpackhi_pd(s2, s2)));
    for (; k < d; ++k) s += static_cast<double>(a[k]) * static_cast<double>(b[k]);
    return s;
}
#endif

}  // namespace

ThresholdOut threshold_filter(const float* Xn, std::int64_t N, std::int64_t d, std::int64_t n,
                              double tau, Span<const std::int64_t> order) {
    if (n < 0) throw std::invalid_argument("n must be >= 0, got " + std::to_string(n));
    if (!std::isfinite(tau)) throw std::invalid_argument("tau must be finite");
    for (std::size_t p = 0; p < order.size; ++p)
        if (order[p] < 0 || order[p] >= N)
            throw std::invalid_argument("order[" + std::to_string(p) + "] = " + std::to_string(order[p]) +
                                        " outside [0, " + std::to_string(N) + ")");
    bool simd = false;
#if TRITONDIV_X86
    simd = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    auto dot = [&](std::int64_t i, std::int64_t j) {
#if TRITONDIV_X86
        if (simd) return dot_avx2(Xn + i * d, Xn + j * d, d);
#endif
        return dot_scalar(Xn + i * d, Xn + j * d, d);
    };
    ThresholdOut out;
    const auto L = static_cast<std::int64_t>(order.size);
    constexpr std::int64_t B = 256;
    std::vector<char> pass(B);
    std::int64_t pos = 0;
    while (pos < L && static_cast<std::int64_t>(out.indices.size()) < n) {
        const auto hi = std::min(L, pos + B);
        const auto kept0 = static_cast<std::int64_t>(out.indices.size());
        // against the kept set before this block: in parallel, stopping at the first hit
#if TRITONDIV_HAVE_OPENMP
#pragma omp parallel for schedule(dynamic, 8)
#endif
        for (std::int64_t p = pos; p < hi; ++p) {
            const auto x = order[p];
            char ok = 1;
            for (std::int64_t q = kept0 - 1; q >= 0; --q)
                if (dot(x, out.indices[q]) > tau) {
                    ok = 0;
                    break;
                }
            pass[p - pos] = ok;
        }
        // within the block, in walk order
        for (std::int64_t p = pos; p < hi && static_cast<std::int64_t>(out.indices.size()) < n; ++p) {
            ++out.walked;
            if (!pass[p - pos]) continue;
            const auto x = order[p];
            bool ok = true;
            for (auto q = static_cast<std::int64_t>(out.indices.size()) - 1; q >= kept0; --q)
                if (dot(x, out.indices[q]) > tau) {
                    ok = false;
                    break;
                }
            if (ok) out.indices.push_back(x);
        }
        pos = hi;
    }
    return out;
}

}  // namespace tritondiv
