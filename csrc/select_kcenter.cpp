// Exact k-center greedy (Gonzalez), lazy, with blocked float32 screening.
//
// Every point x keeps mind[x], the exact squared distance to the nearest of the first
// checked[x] centers: an upper bound of its distance to the chosen set. A max-heap on these
// bounds yields the next center: stale tops are popped in batches and brought up to date
// against the centers they have not seen, until the top is exact; it is then the true
// farthest point (ties: lowest index), because every other entry is an upper bound. The
// picks therefore equal the textbook loop's on the same exact double-accumulated values.
//
// Bringing a point up to date is where the time goes. Distances are screened four points
// by two centers at a time with float32 dot products (|x|^2 + |c|^2 - 2 x.c, eight pairs
// per pass over the rows, FMA-bound), with a rigorous error bound: only a center whose
// screened distance could lie below the point's current minimum is recomputed exactly (in
// double, on the float32 values) and may change it. Two more prunings keep the work small:
// a point whose bound falls below the largest exact value seen in this step (a lower bound
// of the current radius; the points lacking only the newest center are updated first to
// raise it) cannot be the farthest now and stops early; and the triangle inequality skips
// a center c when d(owner, c) >= 2 d(x, owner) (a table of center-center distance bounds,
// kept while it pays: it is dropped when it skips too little).
//
// Reference machine (2-core AMD EPYC VM), 78,806 x 384 MiniLM embeddings, n = 10,000:
// 12-16 s, against 42 s for the previous pairwise float32/float64 version.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
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

// ---- exact squared distance: differences and sum in double ------------------------------

double sqdist_scalar(const float* a, const float* b, std::int64_t d) {
    double s = 0.0;
    for (std::int64_t k = 0; k < d; ++k) {
        const double t = static_cast<double>(a[k]) - static_cast<double>(b[k]);
        s += t * t;
    }
    return s;
}

double sqnorm_scalar(const float* a, std::int64_t d) {
    double s = 0.0;
    for (std::int64_t k = 0; k < d; ++k) s += static_cast<double>(a[k]) * a[k];
    return s;
}

// 4 x 1 float32 dot products: out[p] = x_p . c.
void dots4x1_scalar(const float* const x[4], const float* c, std::int64_t d, float out[4]) {
    for (int p = 0; p < 4; ++p) {
        float s = 0.0f;
        for (std::int64_t k = 0; k < d; ++k) s += x[p][k] * c[k];
        out[p] = s;
    }
}

// 4 x 2 float32 dot products: out[2 * p + j] = x_p . c_j (8 accumulators of 8 lanes).
void dots4x2_scalar(const float* const x[4], const float* c0, const float* c1, std::int64_t d,
                    float out[8]) {
    for (int p = 0; p < 4; ++p) {
        float s0 = 0.0f, s1 = 0.0f;
        for (std::int64_t k = 0; k < d; ++k) {
            s0 += x[p][k] * c0[k];
            s1 += x[p][k] * c1[k];
        }
        out[2 * p] = s0;
        out[2 * p + 1] = s1;
    }
}

#if TRITONDIV_X86
__attribute__((target("avx2,fma"))) double hsum256d(__m256d v) {
    const __m128d lo = _mm256_castpd256_pd128(v), hi = _mm256_extractf128_pd(v, 1);
    const __m128d s = _mm_add_pd(lo, hi);
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}
__attribute__((target("avx2,fma"))) double sqdist_avx2(const float* a, const float* b, std::int64_t d) {
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
    double s = hsum256d(_mm256_add_pd(acc0, acc1));
    for (; k < d; ++k) {
        const double t = static_cast<double>(a[k]) - static_cast<double>(b[k]);
        s += t * t;
    }
    return s;
}
__attribute__((target("avx2,fma"))) void dots4x2_avx2(const float* const x[4], const float* c0,
                                                      const float* c1, std::int64_t d, float out[8]) {
    __m256 s00 = _mm256_setzero_ps(), s01 = _mm256_setzero_ps(), s10 = _mm256_setzero_ps(),
           s11 = _mm256_setzero_ps(), s20 = _mm256_setzero_ps(), s21 = _mm256_setzero_ps(),
           s30 = _mm256_setzero_ps(), s31 = _mm256_setzero_ps();
    const float *x0 = x[0], *x1 = x[1], *x2 = x[2], *x3 = x[3];
    std::int64_t k = 0;
    for (; k + 8 <= d; k += 8) {
        const __m256 a = _mm256_loadu_ps(c0 + k), b = _mm256_loadu_ps(c1 + k);
        __m256 v = _mm256_loadu_ps(x0 + k);
        s00 = _mm256_fmadd_ps(v, a, s00);
        s01 = _mm256_fmadd_ps(v, b, s01);
        v = _mm256_loadu_ps(x1 + k);
        s10 = _mm256_fmadd_ps(v, a, s10);
        s11 = _mm256_fmadd_ps(v, b, s11);
        v = _mm256_loadu_ps(x2 + k);
        s20 = _mm256_fmadd_ps(v, a, s20);
        s21 = _mm256_fmadd_ps(v, b, s21);
        v = _mm256_loadu_ps(x3 + k);
        s30 = _mm256_fmadd_ps(v, a, s30);
        s31 = _mm256_fmadd_ps(v, b, s31);
    }
    // transposed reduction: one vector of the eight sums, in lane order
    const __m256 t0 = _mm256_hadd_ps(s00, s01), t1 = _mm256_hadd_ps(s10, s11);
    const __m256 t2 = _mm256_hadd_ps(s20, s21), t3 = _mm256_hadd_ps(s30, s31);
    const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
    const __m256 r = _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
    _mm256_storeu_ps(out, r);
    for (; k < d; ++k) {
        for (int p = 0; p < 4; ++p) {
            out[2 * p] += x[p][k] * c0[k];
            out[2 * p + 1] += x[p][k] * c1[k];
        }
    }
}
__attribute__((target("avx2,fma"))) void dots4x1_avx2(const float* const x[4], const float* c,
                                                      std::int64_t d, float out[4]) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(),
           s3 = _mm256_setzero_ps();
    std::int64_t k = 0;
    for (; k + 8 <= d; k += 8) {
        const __m256 a = _mm256_loadu_ps(c + k);
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x[0] + k), a, s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(x[1] + k), a, s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(x[2] + k), a, s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(x[3] + k), a, s3);
    }
    // transposed reduction of the four sums
    const __m256 u = _mm256_hadd_ps(_mm256_hadd_ps(s0, s1), _mm256_hadd_ps(s2, s3));
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(u), _mm256_extractf128_ps(u, 1)));
    for (; k < d; ++k)
        for (int p = 0; p < 4; ++p) out[p] += x[p][k] * c[k];
}
bool cpu_has_avx2() {
    static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return ok;
}
#endif

// Rows as float32 (the input itself, or a converted copy of half input) and the distance
// kernels on them.
struct Rows {
    const float* X = nullptr;
    std::int64_t d = 0;
    bool simd = false;
    const float* row(std::int64_t i) const { return X + static_cast<std::size_t>(i) * static_cast<std::size_t>(d); }
    double exact(const float* a, const float* b) const {
#if TRITONDIV_X86
        if (simd) return sqdist_avx2(a, b, d);
#endif
        return sqdist_scalar(a, b, d);
    }
    void dots(const float* const x[4], const float* c0, const float* c1, float out[8]) const {
#if TRITONDIV_X86
        if (simd) return dots4x2_avx2(x, c0, c1, d, out);
#endif
        dots4x2_scalar(x, c0, c1, d, out);
    }
    void dots1(const float* const x[4], const float* c, float out[4]) const {
#if TRITONDIV_X86
        if (simd) return dots4x1_avx2(x, c, d, out);
#endif
        dots4x1_scalar(x, c, d, out);
    }
};

// The screen computes s = nx + nc - 2 fl(x.c) (in double, from float32 norms and a float32
// dot product). The dot product sums d products over 8 lanes of d / 8 fused steps, a
// 3-level tree and a scalar tail of up to 7 products (2 roundings each): |error| <=
// gamma_k sum|x_i c_i| with k <= d / 8 + 3 + 14 and gamma_k ~ k 2^-24, and sum|x_i c_i| <=
// |x||c| <= (nx + nc) / 2; the norms rounded to float add 2^-24 (nx + nc). So
// |s - true| <= (k + 2) 2^-24 (nx + nc); the slack rel (nx + nc) doubles a larger k. A
// center whose screened value is >= bound + slack is provably not closer.
double screen_rel(std::int64_t d) {
    const double k = static_cast<double>(d) / 8.0 + 18.0;
    return 2.0 * (k + 8.0) * std::ldexp(1.0, -24);
}

constexpr std::int64_t kParallelWork = 1 << 14;  // screened pairs worth a parallel region
constexpr std::int32_t kFresh = 1;               // centers a point may lack to count as fresh
constexpr std::int64_t kGroup = 4;               // points screened together (the kernel's 4)
constexpr std::int64_t kTaskGroups = 2;          // groups sharing one pass over the centers
constexpr std::int32_t kTile = 64;               // centers per tile (64 x 1.5 KB rows stay in L2)
constexpr std::int64_t kSide = kTile;            // triangle-table columns buffered before cc
constexpr std::int64_t kParallelCenters = 1024;  // centers worth a parallel triangle-table update
constexpr std::int64_t kProbeFrom = 512, kProbeTo = 1024;  // picks over which the table is judged
constexpr double kProbeMinRate = 0.05;                   // skipped / tested to keep it

// Center-center distance bounds are kept (n (n - 1) / 2 floats) up to this many centers.
constexpr std::int64_t kMaxTriangleCenters = 16384;

// The state of one group of points while it is brought up to date.
struct GroupState {
    double v[kGroup];        // squared distance to the nearest center checked so far
    double skip_at[kGroup];  // 2 sqrt(v), rounded up: the triangle test's threshold
    double slack[kGroup];    // rel * nx: the point's part of the screen's slack
    std::int32_t a[kGroup];  // owner: the center achieving v
    std::int32_t pos[kGroup];  // next center to check
    bool done[kGroup];       // stopped early (or a padding lane)
    float nx[kGroup];        // squared norm
    const float* xr[kGroup];
    bool active;  // some lane still runs
};

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
    if (n >= std::numeric_limits<std::int32_t>::max())
        throw std::invalid_argument("n = " + std::to_string(n) + " centers: at most 2^31 - 2 are supported");
    if (first < 0 || first >= N)
        throw std::invalid_argument("first center " + std::to_string(first) + " outside [0, " +
                                    std::to_string(N) + ")");
    const auto ud = static_cast<std::size_t>(d);
    std::vector<float> converted;
    const float* Xf = static_cast<const float*>(X);
    if (is_f16) {
        // half values are exactly representable in float32: the same exact distances
        converted.resize(static_cast<std::size_t>(N) * ud);
        const auto* h = static_cast<const std::uint16_t*>(X);
        const auto total = static_cast<std::int64_t>(converted.size());
#if TRITONDIV_HAVE_OPENMP
#pragma omp parallel for schedule(static)
#endif
        for (std::int64_t i = 0; i < total; ++i) converted[static_cast<std::size_t>(i)] = half_to_float(h[i]);
        Xf = converted.data();
    }
    Rows rows;
    rows.X = Xf;
    rows.d = d;
#if TRITONDIV_X86
    rows.simd = cpu_has_avx2();
#endif
    const double rel = screen_rel(d);
    std::vector<float> nx(static_cast<std::size_t>(N));
#if TRITONDIV_HAVE_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (std::int64_t i = 0; i < N; ++i) nx[static_cast<std::size_t>(i)] = static_cast<float>(sqnorm_scalar(rows.row(i), d));

    KCenterOut out;
    out.indices.reserve(static_cast<std::size_t>(n));
    out.sq_radii.reserve(static_cast<std::size_t>(n));

    std::vector<double> mind(static_cast<std::size_t>(N));
    std::vector<std::int32_t> checked(static_cast<std::size_t>(N), 1);
    std::vector<std::int32_t> owner(static_cast<std::size_t>(N), 0);
    // the chosen centers' rows, packed contiguously (+1 spare row so pairs can read c + 1)
    std::vector<float> C(static_cast<std::size_t>(n + 1) * ud, 0.0f);
    std::vector<float> nc(static_cast<std::size_t>(n + 1), 0.0f);
    auto crow = [&](std::int64_t c) { return C.data() + static_cast<std::size_t>(c) * ud; };
    // Triangle inequality: a center c with d(owner, c) >= 2 d(x, owner) cannot be closer to
    // x than its owner. cc holds lower bounds of d(o, c) (not squared) for o < c, row by row
    // (row o: c = o + 1 .. n - 1, packed: n (n - 1) / 2 floats).
    // A new center's column is first written to `side` (row o holds d(o, c) for the
    // kSide centers c of the current block: small enough to stay cached, so the scattered
    // writes are cheap) and copied into cc a block at a time (contiguous runs).
    bool use_cc = n <= kMaxTriangleCenters && n > 1;
    // Whether the table pays depends on the data: on clustered, low-dimensional data it
    // skips most pairs; on high-dimensional sentence embeddings a few percent, for ~20%
    // more time. Its skip rate over picks [kProbeFrom, kProbeTo) decides: under
    // kProbeMinRate it is dropped for the rest of the run (the picks do not change).
    std::int64_t cc_tested = 0, cc_skipped = 0;
    const auto nn = static_cast<std::size_t>(n);
    std::unique_ptr<float[]> cc, side;  // uninitialized: only written entries are read
    if (use_cc) {
        cc.reset(new float[nn * (nn - 1) / 2]);
        side.reset(new float[nn * static_cast<std::size_t>(kSide)]);
    }
    std::int64_t side_base = 0;  // the first center whose column lives in `side`
    // index of entry (o, c) of cc, o < c: cc_base(o) + c
    auto cc_base = [&](std::int64_t o) -> std::int64_t {
        return o * n - o * (o + 1) / 2 - (o + 1);
    };

    auto add_center = [&](std::int64_t c) {
        const auto m = static_cast<std::int64_t>(out.indices.size());
        out.indices.push_back(c);
        std::memcpy(crow(m), rows.row(c), ud * sizeof(float));
        nc[static_cast<std::size_t>(m)] = nx[static_cast<std::size_t>(c)];
        if (!use_cc || m == 0) return;
        if (m - side_base == kSide) {  // the block is full: move it into cc
            const std::int64_t b = side_base;
#if TRITONDIV_HAVE_OPENMP
#pragma omp parallel for schedule(static) if (m >= kParallelCenters)
#endif
            for (std::int64_t o = 0; o < m; ++o) {
                const std::int64_t c0 = std::max(b, o + 1);  // entries with o < c
                if (c0 < m)
                    std::memcpy(cc.get() + (cc_base(o) + c0),
                                side.get() + static_cast<std::size_t>(o) * kSide + static_cast<std::size_t>(c0 - b),
                                static_cast<std::size_t>(m - c0) * sizeof(float));
            }
            side_base = m;
        }
        const float* cr = crow(m);
        const double ncm = nc[static_cast<std::size_t>(m)];
        float* col = side.get() + static_cast<std::size_t>(m - side_base);
        // screened distances to the earlier centers, four at a time, shrunk by the slack
        const std::int64_t quads = (m + 3) / 4;
#if TRITONDIV_HAVE_OPENMP
#pragma omp parallel for schedule(static) if (m >= kParallelCenters)
#endif
        for (std::int64_t q = 0; q < quads; ++q) {
            const float* xs[4];
            std::int64_t o[4];
            for (int p = 0; p < 4; ++p) {
                o[p] = std::min(m - 1, 4 * q + p);
                xs[p] = crow(o[p]);
            }
            float dots[4];
            rows.dots1(xs, cr, dots);
            for (int p = 0; p < 4; ++p) {
                const double a = static_cast<double>(nc[static_cast<std::size_t>(o[p])]) + ncm;
                const double sq = a - 2.0 * static_cast<double>(dots[p]) - rel * a;
                col[static_cast<std::size_t>(o[p]) * kSide] =
                    static_cast<float>(std::sqrt(std::max(0.0, sq)) * (1.0 - 1e-6));
            }
        }
    };
    add_center(first);
    const float* fr = rows.row(first);
#if TRITONDIV_HAVE_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (std::int64_t i = 0; i < N; ++i) mind[static_cast<std::size_t>(i)] = rows.exact(rows.row(i), fr);
    std::int64_t evals = N;
    std::vector<HeapItem> heap;
    heap.reserve(static_cast<std::size_t>(N));
    for (std::int64_t i = 0; i < N; ++i)
        if (i != first) heap.push_back({mind[static_cast<std::size_t>(i)], i});
    HeapLess less;
    std::make_heap(heap.begin(), heap.end(), less);

    int threads = 1;
#if TRITONDIV_HAVE_OPENMP
    threads = omp_get_max_threads();
#endif
    const std::int64_t batch_cap = 64 * static_cast<std::int64_t>(threads);
    std::vector<HeapItem> batch;
    std::vector<std::int64_t> group_evals, group_tested, group_skipped;
    // Brings the heap top up to date: pops stale entries (checked < m centers) in batches,
    // updates them against the missing centers in parallel and pushes them back, until the
    // top is exact.
    auto settle = [&]() {
        const auto m = static_cast<std::int32_t>(out.indices.size());
        // floor: the largest exact value seen in this step, a lower bound of the true
        // radius. A stale point whose bound falls below it cannot be the farthest now, so
        // its update stops there (it keeps a valid upper bound and resumes later).
        double floor_v = -1.0;
        while (!heap.empty()) {
            batch.clear();
            while (!heap.empty() && checked[static_cast<std::size_t>(heap.front().i)] < m &&
                   static_cast<std::int64_t>(batch.size()) < batch_cap) {
                std::pop_heap(heap.begin(), heap.end(), less);
                batch.push_back(heap.back());
                heap.pop_back();
            }
            if (batch.empty()) return;
            // points with similar start positions share a group (less screening past m)
            std::sort(batch.begin(), batch.end(), [&](const HeapItem& a, const HeapItem& b) {
                const auto ca = checked[static_cast<std::size_t>(a.i)], cb = checked[static_cast<std::size_t>(b.i)];
                return ca != cb ? ca < cb : a.i < b.i;
            });
            const auto B = static_cast<std::int64_t>(batch.size());
            // Updates batch[bb, be) against the centers each point lacks, in parallel.
            auto process = [&](std::int64_t bb, std::int64_t be) {
                std::int64_t work = 0;  // upper bound of the pairs this batch screens
                for (std::int64_t b = bb; b < be; ++b) work += m - checked[static_cast<std::size_t>(batch[b].i)];
                const std::int64_t count = be - bb, groups = (count + kGroup - 1) / kGroup;
                const std::int64_t tasks = (groups + kTaskGroups - 1) / kTaskGroups;
                group_evals.assign(static_cast<std::size_t>(tasks), 0);
                group_tested.assign(static_cast<std::size_t>(tasks), 0);
                group_skipped.assign(static_cast<std::size_t>(tasks), 0);
#if TRITONDIV_HAVE_OPENMP
#pragma omp parallel for schedule(dynamic, 1) if (work >= kParallelWork)
#endif
                for (std::int64_t task = 0; task < tasks; ++task) {
                    const std::int64_t g0 = task * kTaskGroups, g1 = std::min(groups, g0 + kTaskGroups);
                    GroupState st[kTaskGroups];
                    std::int32_t lo = m;
                    for (std::int64_t grp = g0; grp < g1; ++grp) {
                        GroupState& s = st[grp - g0];
                        const std::int64_t b0 = grp * kGroup, b1 = std::min(count, b0 + kGroup);
                        const int G = static_cast<int>(b1 - b0);
                        for (int k = 0; k < kGroup; ++k) {
                            // pad a short group by repeating its last point (its lanes stay done)
                            const auto x = batch[static_cast<std::size_t>(bb + std::min<std::int64_t>(b0 + k, b1 - 1))].i;
                            const auto ux = static_cast<std::size_t>(x);
                            s.v[k] = mind[ux];
                            s.a[k] = owner[ux];
                            s.skip_at[k] = 2.0 * std::sqrt(s.v[k]) * (1.0 + 1e-7) + 1e-12;
                            s.pos[k] = checked[ux];
                            s.done[k] = k >= G;
                            s.nx[k] = nx[ux];
                            s.slack[k] = rel * static_cast<double>(nx[ux]);
                            s.xr[k] = rows.row(x);
                            if (!s.done[k]) lo = std::min(lo, s.pos[k]);
                        }
                        s.active = true;
                    }
                    std::int64_t ev = 0, tested = 0, skipped = 0;
                    // Tiles of centers, each read from memory once for the whole task (the
                    // task's groups reuse it from cache), so the center stream costs little
                    // per screened pair. Tiles are aligned to the triangle table's blocks, so
                    // a tile's bounds lie either in cc or in side.
                    for (std::int32_t t0 = lo - lo % kTile; t0 < m; t0 += kTile) {
                        const std::int32_t t1 = std::min<std::int32_t>(m, t0 + kTile);
                        const bool in_side = t0 >= side_base;
                        // entry (o, c) of the bounds is tri[tri_base(o) + c]
                        const float* tri = in_side ? side.get() : cc.get();
                        auto tri_base = [&](std::int32_t o) -> std::int64_t {
                            return in_side ? o * kSide - side_base : cc_base(o);
                        };
                        bool any_active = false;
                        for (std::int64_t grp = g0; grp < g1; ++grp) {
                            GroupState& s = st[grp - g0];
                            if (!s.active) continue;
                            std::int32_t start = t1;
                            for (int k = 0; k < kGroup; ++k)
                                if (!s.done[k]) start = std::min(start, std::max(s.pos[k], t0));
                            std::int64_t tb[kGroup];
                            if (use_cc)
                                for (int k = 0; k < kGroup; ++k) tb[k] = tri_base(s.a[k]);
                            for (std::int32_t c = start; c < t1; c += 2) {
                                // which (point, center) pairs of this step are live
                                bool live[kGroup][2];
                                bool any = false, active = false;
                                for (int k = 0; k < kGroup; ++k) {
                                    if (!s.done[k] && s.v[k] < floor_v) {
                                        s.done[k] = true;
                                        s.pos[k] = std::max(s.pos[k], c);
                                    }
                                    for (int j = 0; j < 2; ++j) {
                                        const std::int32_t cj = c + j;
                                        bool l = !s.done[k] && cj < t1 && cj >= s.pos[k];
                                        if (l && use_cc) {
                                            ++tested;
                                            if (tri[tb[k] + cj] >= s.skip_at[k]) {
                                                l = false;
                                                ++skipped;
                                            }
                                        }
                                        live[k][j] = l;
                                        any = any || live[k][j];
                                    }
                                    active = active || !s.done[k];
                                }
                                if (!active) {
                                    s.active = false;
                                    break;
                                }
                                if (!any) continue;
                                float dots[8];
                                rows.dots(s.xr, crow(c), crow(c + 1), dots);
                                for (int k = 0; k < kGroup; ++k) {
                                    for (int j = 0; j < 2; ++j) {
                                        if (!live[k][j]) continue;
                                        ++ev;
                                        const std::int32_t cj = c + j;
                                        const double ncj = nc[static_cast<std::size_t>(cj)];
                                        const double sc = static_cast<double>(s.nx[k]) + ncj - 2.0 * static_cast<double>(dots[2 * k + j]);
                                        if (sc - (s.slack[k] + rel * ncj) >= s.v[k]) continue;  // provably not closer
                                        const double e = rows.exact(s.xr[k], crow(cj));
                                        if (e < s.v[k]) {
                                            s.v[k] = e;
                                            s.a[k] = cj;
                                            s.skip_at[k] = 2.0 * std::sqrt(e) * (1.0 + 1e-7) + 1e-12;
                                            if (use_cc) tb[k] = tri_base(cj);
                                        }
                                    }
                                }
                            }
                            any_active = any_active || s.active;
                        }
                        if (!any_active) break;
                    }
                    for (std::int64_t grp = g0; grp < g1; ++grp) {
                        const GroupState& s = st[grp - g0];
                        const std::int64_t b0 = grp * kGroup, b1 = std::min(count, b0 + kGroup);
                        for (std::int64_t b = b0; b < b1; ++b) {
                            const int k = static_cast<int>(b - b0);
                            const auto ux = static_cast<std::size_t>(batch[static_cast<std::size_t>(bb + b)].i);
                            mind[ux] = s.v[k];
                            owner[ux] = s.a[k];
                            checked[ux] = s.done[k] ? s.pos[k] : m;
                            batch[static_cast<std::size_t>(bb + b)].v = s.v[k];
                        }
                    }
                    group_evals[static_cast<std::size_t>(task)] = ev;
                    group_tested[static_cast<std::size_t>(task)] = tested;
                    group_skipped[static_cast<std::size_t>(task)] = skipped;
                }
                for (std::int64_t g = 0; g < tasks; ++g) {
                    evals += group_evals[static_cast<std::size_t>(g)];
                    cc_tested += group_tested[static_cast<std::size_t>(g)];
                    cc_skipped += group_skipped[static_cast<std::size_t>(g)];
                }
            };
            auto raise_floor = [&](std::int64_t bb, std::int64_t be) {
                for (std::int64_t b = bb; b < be; ++b) {
                    const auto& it = batch[static_cast<std::size_t>(b)];
                    if (checked[static_cast<std::size_t>(it.i)] == m && it.v > floor_v) floor_v = it.v;
                }
            };
            // Points fully checked up to the previous pick need one more distance each;
            // they go first, and their exact values raise the floor before the staler
            // points of the batch (which then stop early) are updated.
            std::int64_t split = B;  // batch[split..B) is fresh (sorted by checked)
            while (split > 0 && checked[static_cast<std::size_t>(batch[static_cast<std::size_t>(split - 1)].i)] >= m - kFresh) --split;
            if (split > 0 && split < B) {
                process(split, B);
                raise_floor(split, B);
                process(0, split);
                raise_floor(0, split);
            } else {
                process(0, B);
                raise_floor(0, B);
            }
            for (std::int64_t b = 0; b < B; ++b) {
                heap.push_back(batch[static_cast<std::size_t>(b)]);
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
        if (use_cc && step + 1 == kProbeFrom) cc_tested = cc_skipped = 0;
        if (use_cc && step + 1 == kProbeTo && cc_skipped < kProbeMinRate * static_cast<double>(cc_tested)) {
            use_cc = false;
            cc.reset();
            side.reset();
        }
    }
    out.evaluations = evals;
    return out;
}

}  // namespace tritondiv
