// Exact k-center greedy (Gonzalez) with triangle-inequality skipping.
//
// Lazy evaluation: every point keeps its exact squared distance to the nearest of the
// centers it has been compared with so far, which upper-bounds its true distance to the
// chosen set. A max-heap on these bounds yields the next center: stale tops are brought up
// to date (in parallel batches, against only the centers they have not seen) until the top
// is exact. Points far below the current radius are never touched again, and the picks
// equal the textbook loop's (argmax of the running minimum, ties by lowest index, chosen
// points excluded) because the distances are the same exact double-accumulated values.
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
// Squared distance accumulated in float32 (the fast screen). All terms are >= 0, so its
// relative error is below ~(d / 16 + 4) * 2^-24 (16 lanes); kApproxSlack covers d <= 4096.
constexpr double kApproxSlack = 1e-4;
__attribute__((target("avx2,fma"))) float sqdist_f32_fast(const float* a, const float* b,
                                                          std::int64_t d) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    std::int64_t k = 0;
    for (; k + 16 <= d; k += 16) {
        const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k));
        const __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + k + 8), _mm256_loadu_ps(b + k + 8));
        acc0 = _mm256_fmadd_ps(d0, d0, acc0);
        acc1 = _mm256_fmadd_ps(d1, d1, acc1);
    }
    const __m256 v = _mm256_add_ps(acc0, acc1);
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    s4 = _mm_add_ss(s4, _mm_shuffle_ps(s4, s4, 1));
    float s = _mm_cvtss_f32(s4);
    for (; k < d; ++k) {
        const float t = a[k] - b[k];
        s += t * t;
    }
    return s;
}
__attribute__((target("avx2,fma,f16c"))) float sqdist_f16_fast(const std::uint16_t* a,
                                                               const std::uint16_t* b,
                                                               std::int64_t d) {
    __m256 acc0 = _mm256_setzero_ps();
    std::int64_t k = 0;
    for (; k + 8 <= d; k += 8) {
        const __m256 x = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + k)));
        const __m256 y = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + k)));
        const __m256 t = _mm256_sub_ps(x, y);
        acc0 = _mm256_fmadd_ps(t, t, acc0);
    }
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(acc0), _mm256_extractf128_ps(acc0, 1));
    s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    s4 = _mm_add_ss(s4, _mm_shuffle_ps(s4, s4, 1));
    float s = _mm_cvtss_f32(s4);
    for (; k < d; ++k) {
        const float t = half_to_float(a[k]) - half_to_float(b[k]);
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
    std::size_t row_bytes() const { return static_cast<std::size_t>(d) * (f16 ? 2 : 4); }
    const void* row(std::int64_t i) const {
        return static_cast<const unsigned char*>(X) + static_cast<std::size_t>(i) * row_bytes();
    }
    // Exact squared distance if it may be below `bound`; otherwise any value >= bound.
    double below(const void* a, const void* b, double bound) const {
#if TRITONDIV_X86
        if (simd && d <= 4096) {
            const double approx =
                f16 ? sqdist_f16_fast(static_cast<const std::uint16_t*>(a), static_cast<const std::uint16_t*>(b), d)
                    : sqdist_f32_fast(static_cast<const float*>(a), static_cast<const float*>(b), d);
            if (approx >= bound * (1.0 + kApproxSlack)) return approx;
        }
#endif
        return exact(a, b);
    }
    double exact(const void* a, const void* b) const {
        if (f16) {
            const auto* p = static_cast<const std::uint16_t*>(a);
            const auto* q = static_cast<const std::uint16_t*>(b);
#if TRITONDIV_X86
            if (simd) return sqdist_f16_avx2(p, q, d);
#endif
            return sqdist_f16_scalar(p, q, d);
        }
        const auto* p = static_cast<const float*>(a);
        const auto* q = static_cast<const float*>(b);
#if TRITONDIV_X86
        if (simd) return sqdist_f32_avx2(p, q, d);
#endif
        return sqdist_f32_scalar(p, q, d);
    }
};

constexpr std::int64_t kParallelWork = 1 << 18;
constexpr std::int64_t kGroup = 8;     // points updated together
constexpr std::int32_t kTile = 64;     // centers per tile (64 x 1.5 KB rows stay in L2)
// Center-center distance bounds are kept (n^2 floats) up to this many centers.
constexpr std::int64_t kMaxTriangleCenters = 16384;

struct HeapItem {
    double v;        // squared distance to the nearest center checked so far (upper bound)
    std::int64_t i;  // point index
};
// max-heap: larger value first, then lower index
struct HeapLess {
    bool operator()(const HeapItem& a, const HeapItem& b) const {
        return a.v != b.v ? a.v < b.v : a.i > b.i;
    }
};

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

    // mind[x]: exact minimum over the first checked[x] centers; since minima only shrink it
    // is an upper bound of x's true distance to the chosen set.
    std::vector<double> mind(static_cast<std::size_t>(N));
    std::vector<std::int32_t> checked(static_cast<std::size_t>(N), 1);
    // the chosen centers' rows, packed contiguously (the update loops stream over them)
    const std::size_t rb = dist.row_bytes();
    std::vector<unsigned char> centers;
    centers.reserve(static_cast<std::size_t>(n) * rb);
    // owner[x]: position of the center achieving mind[x]. cc: lower bounds of the distances
    // between centers (packed lower triangle), for the triangle inequality: a center c with
    // d(owner, c) >= 2 d(x, owner) cannot be closer to x than its owner.
    std::vector<std::int32_t> owner(static_cast<std::size_t>(N), 0);
    const bool use_cc = n <= kMaxTriangleCenters;
    std::vector<float> cc;
    // row o holds d(o, c) for the later centers c > o, so one point's scan reads one row
    // contiguously
    if (use_cc) cc.assign(static_cast<std::size_t>(n) * static_cast<std::size_t>(n), 0.0f);
    const auto nn = static_cast<std::size_t>(n);
    auto cc_at = [&](std::int64_t hi, std::int64_t lo) { return cc[static_cast<std::size_t>(lo) * nn + hi]; };
    auto add_center = [&](std::int64_t c) {
        const auto m = static_cast<std::int64_t>(out.indices.size());
        out.indices.push_back(c);
        const auto* r = static_cast<const unsigned char*>(dist.row(c));
        centers.insert(centers.end(), r, r + rb);
        if (!use_cc || m == 0) return;
        const void* cr = centers.data() + static_cast<std::size_t>(m) * rb;
#if TRITONDIV_HAVE_OPENMP
#pragma omp parallel for schedule(static) if (m * d >= kParallelWork * 64)
#endif
        for (std::int64_t o = 0; o < m; ++o) {
            // any value below the true distance is a valid bound: shrink the float32 screen
            const double a = dist.below(cr, centers.data() + static_cast<std::size_t>(o) * rb, 0.0);
            cc[static_cast<std::size_t>(o) * nn + m] = static_cast<float>(std::sqrt(a / (1.0 + kApproxSlack)) * (1.0 - 1e-6));
        }
    };
    add_center(first);
#if TRITONDIV_HAVE_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (std::int64_t i = 0; i < N; ++i) mind[i] = dist.exact(dist.row(i), dist.row(first));
    std::int64_t evals = N;
    std::vector<HeapItem> heap;
    heap.reserve(static_cast<std::size_t>(N));
    for (std::int64_t i = 0; i < N; ++i)
        if (i != first) heap.push_back({mind[i], i});
    HeapLess less;
    std::make_heap(heap.begin(), heap.end(), less);

    int threads = 1;
#if TRITONDIV_HAVE_OPENMP
    threads = omp_get_max_threads();
#endif
    const std::int64_t batch_cap = 64 * static_cast<std::int64_t>(threads);
    std::vector<HeapItem> batch;
    std::vector<std::int64_t> batch_evals;
    // Brings the heap top up to date: pops stale entries (checked < m centers) in batches,
    // updates them against the missing centers in parallel and pushes them back, until the
    // top is exact. An exact top is the true farthest point (ties: lowest index) because
    // every other entry's value is an upper bound of its true distance.
    auto settle = [&]() {
        const auto m = static_cast<std::int32_t>(out.indices.size());
        // floor: the largest exact value seen in this step, a lower bound of the true
        // radius. A stale point whose bound falls below it cannot be the farthest now, so
        // its update stops there (it keeps a valid upper bound and resumes later).
        double floor_v = -1.0;
        while (!heap.empty()) {
            batch.clear();
            while (!heap.empty() && checked[heap.front().i] < m &&
                   static_cast<std::int64_t>(batch.size()) < batch_cap) {
                std::pop_heap(heap.begin(), heap.end(), less);
                batch.push_back(heap.back());
                heap.pop_back();
            }
            if (batch.empty()) return;
            const auto B = static_cast<std::int64_t>(batch.size());
            batch_evals.assign(static_cast<std::size_t>(B), 0);
            std::int64_t work = 0;  // upper bound of the distances this batch computes
            for (std::int64_t b = 0; b < B; ++b) work += m - checked[batch[b].i];
            // a parallel region costs microseconds: only worth it for enough distances
            // Points are processed in groups of kGroup against tiles of kTile centers, so a
            // tile of center rows is read from memory once per group rather than per point.
            const std::int64_t groups = (B + kGroup - 1) / kGroup;
#if TRITONDIV_HAVE_OPENMP
#pragma omp parallel for schedule(dynamic, 1) if (work >= kParallelWork)
#endif
            for (std::int64_t grp = 0; grp < groups; ++grp) {
                const std::int64_t b0 = grp * kGroup, b1 = std::min(B, b0 + kGroup);
                double v[kGroup], skip_at[kGroup];
                std::int32_t a[kGroup], pos[kGroup];
                std::int64_t ev[kGroup];
                bool done[kGroup];
                const void* xr[kGroup];
                std::int32_t lo = m;
                for (std::int64_t b = b0; b < b1; ++b) {
                    const auto k = b - b0;
                    const auto x = batch[b].i;
                    v[k] = mind[x];
                    a[k] = owner[x];
                    skip_at[k] = 2.0 * std::sqrt(v[k]) * (1.0 + 1e-7) + 1e-12;
                    pos[k] = checked[x];
                    ev[k] = 0;
                    done[k] = false;
                    xr[k] = dist.row(x);
                    lo = std::min(lo, pos[k]);
                }
                for (std::int32_t t0 = lo; t0 < m; t0 += kTile) {
                    const std::int32_t t1 = std::min<std::int32_t>(m, t0 + kTile);
                    bool active = false;
                    for (std::int64_t k = 0; k < b1 - b0; ++k) {
                        if (done[k]) continue;
                        std::int32_t c = std::max(pos[k], t0);
                        for (; c < t1; ++c) {
                            if (v[k] < floor_v) {
                                done[k] = true;
                                break;
                            }
                            if (use_cc && cc_at(c, a[k]) >= skip_at[k]) continue;  // a < c
                            const double nd =
                                dist.below(xr[k], centers.data() + static_cast<std::size_t>(c) * rb, v[k]);
                            ++ev[k];
                            if (nd < v[k]) {
                                v[k] = nd;
                                a[k] = c;
                                skip_at[k] = 2.0 * std::sqrt(nd) * (1.0 + 1e-7) + 1e-12;
                            }
                        }
                        pos[k] = std::max(pos[k], c);
                        active = active || !done[k];
                    }
                    if (!active) break;
                }
                for (std::int64_t b = b0; b < b1; ++b) {
                    const auto k = b - b0;
                    const auto x = batch[b].i;
                    batch_evals[b] = ev[k];
                    mind[x] = v[k];
                    owner[x] = a[k];
                    checked[x] = done[k] ? pos[k] : m;
                    batch[b].v = v[k];
                }
            }
            for (std::int64_t b = 0; b < B; ++b) {
                evals += batch_evals[b];
                if (checked[batch[b].i] == m && batch[b].v > floor_v) floor_v = batch[b].v;
                heap.push_back(batch[b]);
                std::push_heap(heap.begin(), heap.end(), less);
            }
        }
    };
    settle();
    out.sq_radii.push_back(heap.empty() ? 0.0 : heap.front().v);
    for (std::int64_t step = 1; step < n; ++step) {
        // the settled top is the next center
        std::pop_heap(heap.begin(), heap.end(), less);
        const auto c = heap.back().i;
        heap.pop_back();
        add_center(c);
        settle();
        out.sq_radii.push_back(heap.empty() ? 0.0 : heap.front().v);
    }
    out.evaluations = evals;
    return out;
}

}  // namespace tritondiv
