// Exact k-center greedy (Gonzalez) with triangle-inequality skipping.
//
// Every point keeps its squared distance to the nearest chosen center and belongs to that
// center's member list; each center keeps the largest member distance (ties: lowest index).
// When a new center c' arrives, a whole center group c is skipped when
// d(c, c') >= 2 * r_c (then d(x, c') >= d(c, c') - d(x, c) >= d(x, c) for all members), and
// inside a scanned group a member x is skipped when d(c, c') >= 2 * d(x, c). The skips only
// avoid computing distances that cannot lower a minimum, so the picks equal the textbook
// loop's (argmax of the running minimum, ties by lowest index, chosen points excluded).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
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

inline float half_to_float(std::uint16_t h) {
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
    std::uint32_t exp = (h >> 10) & 0x1Fu;
    std::uint32_t mant = h & 0x3FFu;
    std::uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {  // subnormal
            exp = 127 - 15 + 1;
            while ((mant & 0x400u) == 0) {
                mant <<= 1;
                --exp;
            }
            mant &= 0x3FFu;
            bits = sign | (exp << 23) | (mant << 13);
        }
    } else if (exp == 0x1F) {
        bits = sign | 0x7F800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

double sqdist_f32_scalar(const float* a, const float* b, std::int64_t d) {
    double s = 0.0;
    for (std::int64_t k = 0; k < d; ++k) {
        const double t = static_cast<double>(a[k]) - static_cast<double>(b[k]);
        s += t * t;
    }
    return s;
}
double sqdist_f16_scalar(const std::uint16_t* a, const std::uint16_t* b, std::int64_t d) {
    double s = 0.0;
    for (std::int64_t k = 0; k < d; ++k) {
        const double t = static_cast<double>(half_to_float(a[k])) - static_cast<double>(half_to_float(b[k]));
        s += t * t;
    }
    return s;
}

#if TRITONDIV_X86
__attribute__((target("avx2,fma"))) double hsum256(__m256d v) {
    const __m128d lo = _mm256_castpd256_pd128(v), hi = _mm256_extractf128_pd(v, 1);
    const __m128d s = _mm_add_pd(lo, hi);
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}
__attribute__((target("avx2,fma"))) double sqdist_f32_avx2(const float* a, const float* b,
                                                           std::int64_t d) {
    __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
    std::int64_t k = 0;
    for (; k + 8 <= d; k += 8) {
        const __m256 x = _mm256_loadu_ps(a + k), y = _mm256_loadu_ps(b + k);
        const __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(x)),
                                         _mm256_cvtps_pd(_mm256_castps256_ps128(y)));
        const __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)),
                                         _mm256_cvtps_pd(_mm256_extractf128_ps(y, 1)));
        acc0 = _mm256_fmadd_pd(d0, d0, acc0);
        acc1 = _mm256_fmadd_pd(d1, d1, acc1);
    }
    double s = hsum256(_mm256_add_pd(acc0, acc1));
    for (; k < d; ++k) {
        const double t = static_cast<double>(a[k]) - static_cast<double>(b[k]);
        s += t * t;
    }
    return s;
}
__attribute__((target("avx2,fma,f16c"))) double sqdist_f16_avx2(const std::uint16_t* a,
                                                                const std::uint16_t* b,
                                                                std::int64_t d) {
    __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
    std::int64_t k = 0;
    for (; k + 8 <= d; k += 8) {
        const __m256 x = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + k)));
        const __m256 y = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + k)));
        const __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(x)),
                                         _mm256_cvtps_pd(_mm256_castps256_ps128(y)));
        const __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)),
                                         _mm256_cvtps_pd(_mm256_extractf128_ps(y, 1)));
        acc0 = _mm256_fmadd_pd(d0, d0, acc0);
        acc1 = _mm256_fmadd_pd(d1, d1, acc1);
    }
    double s = hsum256(_mm256_add_pd(acc0, acc1));
    for (; k < d; ++k) {
        const double t = static_cast<double>(half_to_float(a[k])) - static_cast<double>(half_to_float(b[k]));
        s += t * t;
    }
    return s;
}
bool cpu_has_avx2() {
    static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                           __builtin_cpu_supports("f16c");
    return ok;
}
#endif

struct Dist {
    const void* X;
    bool f16;
    std::int64_t d;
    bool simd;
    double operator()(std::int64_t i, std::int64_t j) const {
        if (f16) {
            const auto* p = static_cast<const std::uint16_t*>(X);
#if TRITONDIV_X86
            if (simd) return sqdist_f16_avx2(p + i * d, p + j * d, d);
#endif
            return sqdist_f16_scalar(p + i * d, p + j * d, d);
        }
        const auto* p = static_cast<const float*>(X);
#if TRITONDIV_X86
        if (simd) return sqdist_f32_avx2(p + i * d, p + j * d, d);
#endif
        return sqdist_f32_scalar(p + i * d, p + j * d, d);
    }
};

struct Best {
    double v = -1.0;
    std::int64_t i = -1;
    void offer(double value, std::int64_t idx) {
        if (value > v || (value == v && idx < i)) {
            v = value;
            i = idx;
        }
    }
};

struct WorkItem {
    std::int64_t group, lo, hi;
};

constexpr std::int64_t kChunk = 2048;

}  // namespace

KCenterOut kcenter_greedy(const void* X, bool is_f16, std::int64_t N, std::int64_t d,
                          std::int64_t n, std::int64_t first) {
    if (N <= 0) throw std::invalid_argument("X has no rows: k-center needs at least one point");
    if (d <= 0) throw std::invalid_argument("X has no columns (d = " + std::to_string(d) + ")");
    if (n < 1 || n > N)
        throw std::invalid_argument("n = " + std::to_string(n) + " must lie in [1, N = " +
                                    std::to_string(N) + "]");
    if (first < 0 || first >= N)
        throw std::invalid_argument("first center " + std::to_string(first) + " outside [0, " +
                                    std::to_string(N) + ")");
    bool simd = false;
#if TRITONDIV_X86
    simd = cpu_has_avx2();
#endif
    const Dist dist{X, is_f16, d, simd};
    KCenterOut out;
    out.indices.reserve(static_cast<std::size_t>(n));
    out.sq_radii.reserve(static_cast<std::size_t>(n));

    std::vector<double> mind(static_cast<std::size_t>(N));
    std::vector<std::vector<std::int64_t>> members;  // per center, ascending index not required
    std::vector<Best> gbest;                        // per center: farthest member
    members.reserve(static_cast<std::size_t>(n));
    gbest.reserve(static_cast<std::size_t>(n));
    std::vector<double> center_dist;                 // d(c, c') of the current step (not squared)
    std::int64_t evals = 0;

    // first center: every other point is its member
    out.indices.push_back(first);
    members.emplace_back();
    members[0].reserve(static_cast<std::size_t>(N - 1));
    for (std::int64_t i = 0; i < N; ++i)
        if (i != first) members[0].push_back(i);
    {
        const auto M = static_cast<std::int64_t>(members[0].size());
        const auto& mem = members[0];
#if TRITONDIV_HAVE_OPENMP
#pragma omp parallel for schedule(static)
#endif
        for (std::int64_t p = 0; p < M; ++p) mind[mem[p]] = dist(mem[p], first);
        evals += M;
        Best b;
        for (std::int64_t p = 0; p < M; ++p) b.offer(mind[mem[p]], mem[p]);
        gbest.push_back(b);
    }
    auto global_best = [&]() {
        Best b;
        for (const auto& g : gbest)
            if (g.i >= 0) b.offer(g.v, g.i);
        return b;
    };
    {
        const Best b = global_best();
        out.sq_radii.push_back(b.i >= 0 ? b.v : 0.0);
    }

    std::vector<WorkItem> work;
    std::vector<std::vector<std::int64_t>> kept, moved;
    std::vector<Best> kept_best, moved_best;
    std::vector<std::int64_t> item_evals;
    for (std::int64_t step = 1; step < n; ++step) {
        const Best b = global_best();
        const std::int64_t cn = b.i;  // the new center (exists: n <= N)
        const auto m = static_cast<std::int64_t>(out.indices.size());
        out.indices.push_back(cn);
        // distances from every earlier center to the new one
        center_dist.assign(static_cast<std::size_t>(m), 0.0);
#if TRITONDIV_HAVE_OPENMP
#pragma omp parallel for schedule(static)
#endif
        for (std::int64_t c = 0; c < m; ++c)
            center_dist[c] = members[c].empty() ? 0.0 : std::sqrt(dist(out.indices[c], cn));
        evals += m;
        // groups that may change (the group holding cn always: cn leaves it)
        work.clear();
        for (std::int64_t c = 0; c < m; ++c) {
            if (members[c].empty()) continue;
            const double rc = std::sqrt(gbest[c].v);
            const bool skip = center_dist[c] > 2.0 * rc * (1.0 + 1e-9) + 1e-12;
            bool holds = false;
            if (skip) {
                // cn sits in exactly one group; find it cheaply via its distance value
                holds = (gbest[c].i == cn);
            }
            if (skip && !holds) continue;
            const auto M = static_cast<std::int64_t>(members[c].size());
            for (std::int64_t lo = 0; lo < M; lo += kChunk) work.push_back({c, lo, std::min(M, lo + kChunk)});
        }
        const auto W = static_cast<std::int64_t>(work.size());
        kept.resize(static_cast<std::size_t>(W));
        moved.resize(static_cast<std::size_t>(W));
        kept_best.assign(static_cast<std::size_t>(W), Best{});
        moved_best.assign(static_cast<std::size_t>(W), Best{});
        item_evals.assign(static_cast<std::size_t>(W), 0);
#if TRITONDIV_HAVE_OPENMP
#pragma omp parallel for schedule(dynamic, 1)
#endif
        for (std::int64_t w = 0; w < W; ++w) {
            const auto& it = work[w];
            const auto& mem = members[it.group];
            auto& kp = kept[w];
            auto& mv = moved[w];
            kp.clear();
            mv.clear();
            const double dcc = center_dist[it.group];
            std::int64_t ev = 0;
            for (std::int64_t p = it.lo; p < it.hi; ++p) {
                const auto x = mem[p];
                if (x == cn) continue;
                const double old = mind[x];
                if (dcc > 2.0 * std::sqrt(old) * (1.0 + 1e-9) + 1e-12) {
                    kp.push_back(x);
                    kept_best[w].offer(old, x);
                    continue;
                }
                const double nd = dist(x, cn);
                ++ev;
                if (nd < old) {
                    mind[x] = nd;
                    mv.push_back(x);
                    moved_best[w].offer(nd, x);
                } else {
                    kp.push_back(x);
                    kept_best[w].offer(old, x);
                }
            }
            item_evals[w] = ev;
        }
        // merge in work order (deterministic)
        members.emplace_back();
        gbest.emplace_back();
        auto& newmem = members.back();
        Best nb;
        std::int64_t w = 0;
        while (w < W) {
            const auto c = work[w].group;
            std::vector<std::int64_t> rebuilt;
            Best cb;
            for (; w < W && work[w].group == c; ++w) {
                rebuilt.insert(rebuilt.end(), kept[w].begin(), kept[w].end());
                if (kept_best[w].i >= 0) cb.offer(kept_best[w].v, kept_best[w].i);
                newmem.insert(newmem.end(), moved[w].begin(), moved[w].end());
                if (moved_best[w].i >= 0) nb.offer(moved_best[w].v, moved_best[w].i);
                evals += item_evals[w];
            }
            members[c].swap(rebuilt);
            gbest[c] = cb;
        }
        gbest.back() = nb;
        const Best r = global_best();
        out.sq_radii.push_back(r.i >= 0 ? r.v : 0.0);
    }
    out.evaluations = evals;
    return out;
}

}  // namespace tritondiv
