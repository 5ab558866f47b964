// Token statistics kernels (see token_stats.hpp).
#include "token_stats.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

namespace tritondiv {

namespace {

constexpr std::int64_t kNoBad = std::numeric_limits<std::int64_t>::max();
// token_counts packs a row index into 32 bits; the all-ones value means "never seen".
constexpr std::uint64_t kRowMask = 0xFFFFFFFF00000000ULL;
constexpr std::uint64_t kNeverSeen = kRowMask;
constexpr std::size_t kMaxRows = 0xFFFFFFFFULL;

int thread_id() {
#if TRITONDIV_HAVE_OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

int team_size() {
#if TRITONDIV_HAVE_OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

// Row ranges [bounds[c], bounds[c+1]) holding about the same number of tokens each, so a
// dynamic schedule over them balances ragged pools. Results never depend on the split.
std::vector<std::size_t> row_chunks(const CsrView<std::int32_t>& t, int threads) {
    const std::size_t rows = t.rows();
    const auto nnz = static_cast<std::int64_t>(t.values.size);
    std::vector<std::size_t> bounds{0};
    if (rows == 0) {
        bounds.push_back(0);
        return bounds;
    }
    const std::int64_t min_tokens = 1 << 15;
    std::int64_t want = std::max<std::int64_t>(1, static_cast<std::int64_t>(threads) * 16);
    want = std::max<std::int64_t>(1, std::min<std::int64_t>(want, nnz / min_tokens));
    const std::int64_t* off = t.offsets.data;
    for (std::int64_t c = 1; c < want; ++c) {
        const std::int64_t target = nnz / want * c;
        auto r = static_cast<std::size_t>(std::lower_bound(off, off + rows + 1, target) - off);
        r = std::min(r, rows);
        if (r > bounds.back()) bounds.push_back(r);
    }
    if (bounds.back() != rows) bounds.push_back(rows);
    return bounds;
}

[[noreturn]] void throw_bad_id(const CsrView<std::int32_t>& t, std::int64_t pos, std::int32_t vocab) {
    throw std::invalid_argument("token ids must lie in [0, vocab_size=" + std::to_string(vocab) +
                                "): ids[" + std::to_string(pos) +
                                "] = " + std::to_string(t.values[static_cast<std::size_t>(pos)]));
}

inline bool out_of_range(std::int32_t id, std::int32_t vocab) {
    return static_cast<std::uint32_t>(id) >= static_cast<std::uint32_t>(vocab);
}

// End of the valid prefix of ids[b, e): the first id outside [0, vocab) (its position is
// recorded in bad_pos; the kernels throw on the first bad position after their parallel
// region), or e.
inline std::int64_t valid_end(const std::int32_t* ids, std::int64_t b, std::int64_t e, std::int32_t vocab,
                              std::int64_t& bad_pos) {
    for (std::int64_t p = b; p < e; ++p) {
        if (out_of_range(ids[p], vocab)) {
            bad_pos = std::min(bad_pos, p);
            return p;
        }
    }
    return e;
}

void check_vocab(std::int32_t vocab) {
    if (vocab < 0) throw std::invalid_argument("vocab_size must be >= 0, got " + std::to_string(vocab));
}

// First bad position over the per-thread minima (deterministic), or throw nothing.
void rethrow_bad(const CsrView<std::int32_t>& t, const std::vector<std::int64_t>& bad, std::int32_t vocab) {
    const std::int64_t first = *std::min_element(bad.begin(), bad.end());
    if (first != kNoBad) throw_bad_id(t, first, vocab);
}

inline std::uint64_t fmix64(std::uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

inline std::uint64_t pack2(std::int32_t a, std::int32_t b) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) |
           static_cast<std::uint32_t>(b);
}

// An open-addressing set of 64-bit keys (linear probing, load <= 1/2, key 0 kept aside).
class KeySet {
   public:
    void reset(std::size_t capacity_pow2) {
        slots_.assign(capacity_pow2, 0);
        mask_ = capacity_pow2 - 1;
        count_ = 0;
        has_zero_ = false;
    }
    void insert(std::uint64_t k) {
        if (k == 0) {
            has_zero_ = true;
            return;
        }
        std::size_t i = static_cast<std::size_t>(k) & mask_;
        for (;;) {
            const std::uint64_t s = slots_[i];
            if (s == k) return;
            if (s == 0) {
                slots_[i] = k;
                if (++count_ * 2 > slots_.size()) grow();
                return;
            }
            i = (i + 1) & mask_;
        }
    }
    std::int64_t size() const { return static_cast<std::int64_t>(count_) + (has_zero_ ? 1 : 0); }

   private:
    void grow() {
        std::vector<std::uint64_t> old;
        old.swap(slots_);
        slots_.assign(old.size() * 2, 0);
        mask_ = slots_.size() - 1;
        for (std::uint64_t k : old) {
            if (k == 0) continue;
            std::size_t i = static_cast<std::size_t>(k) & mask_;
            while (slots_[i] != 0) i = (i + 1) & mask_;
            slots_[i] = k;
        }
    }
    std::vector<std::uint64_t> slots_;
    std::size_t mask_ = 0;
    std::size_t count_ = 0;
    bool has_zero_ = false;
};

std::size_t next_pow2(std::size_t x) {
    std::size_t p = 1;
    while (p < x) p <<= 1;
    return p;
}

void check_n(int n) {
    if (n < 1 || n > 4) throw std::invalid_argument("n must be 1, 2, 3 or 4, got " + std::to_string(n));
}

std::int64_t total_ngrams(const CsrView<std::int32_t>& t, int n) {
    std::int64_t total = 0;
    for (std::size_t r = 0; r < t.rows(); ++r) total += std::max<std::int64_t>(0, t.row_size(r) - n + 1);
    return total;
}

}  // namespace

std::uint64_t ngram_key(const std::int32_t* p, int n) {
    switch (n) {
        case 1:
            return fmix64(static_cast<std::uint32_t>(p[0]) | (1ULL << 40));
        case 2:
            return fmix64(pack2(p[0], p[1]));
        case 3:
            return fmix64(pack2(p[0], p[1]) ^
                          fmix64(static_cast<std::uint32_t>(p[2]) + 0x9e3779b97f4a7c15ULL));
        default:
            return fmix64(pack2(p[0], p[1]) ^ fmix64(pack2(p[2], p[3]) + 0x632be59bd9b4e019ULL));
    }
}

// ---- counts, document frequency, lengths, distinct per sample --------------------------

TokenCounts token_counts(const CsrView<std::int32_t>& t, std::int32_t vocab) {
    check_vocab(vocab);
    const std::size_t rows = t.rows();
    const std::size_t V = static_cast<std::size_t>(vocab);
    const int T = num_threads();
    const auto bounds = row_chunks(t, T);
    const auto nchunks = static_cast<std::int64_t>(bounds.size() - 1);

    if (rows >= kMaxRows)
        throw std::invalid_argument("token_counts handles at most " + std::to_string(kMaxRows - 1) +
                                    " samples, got " + std::to_string(rows) + ": split the pool");

    TokenCounts out;
    out.lengths.resize(rows);
    out.distinct.resize(rows);
    // Per thread: kLanes interleaved occurrence histograms (consecutive tokens update
    // different arrays, so a frequent id does not serialize on one counter through
    // store-to-load forwarding), and per id one word packing the last row that held it
    // (high 32 bits) with its document frequency (low 32 bits: at most the rows a thread
    // sees), so the new-in-this-row test is one load and one store.
    constexpr std::size_t kLanes = 4;
    // The tables are allocated here, before the region (a failed allocation raises
    // MemoryError instead of aborting inside it), and left uninitialized: each thread
    // first-touches (fills) its own inside the region.
    std::vector<std::unique_ptr<std::int64_t[]>> hist(static_cast<std::size_t>(T));
    std::vector<std::unique_ptr<std::uint64_t[]>> seen(static_cast<std::size_t>(T));
    for (int th = 0; th < T; ++th) {
        hist[static_cast<std::size_t>(th)].reset(new std::int64_t[kLanes * V]);
        seen[static_cast<std::size_t>(th)].reset(new std::uint64_t[V]);
    }
    std::vector<std::int64_t> bad(static_cast<std::size_t>(T), kNoBad);
    const std::int64_t* off = t.offsets.data;
    const std::int32_t* ids = t.values.data;
    int team = 1;  // threads the region really got (at most T): only their tables are filled

#if TRITONDIV_HAVE_OPENMP
#pragma omp parallel num_threads(T)
#endif
    {
        const int tid = thread_id();
#if TRITONDIV_HAVE_OPENMP
#pragma omp single nowait
#endif
        team = team_size();
        std::int64_t* h = hist[static_cast<std::size_t>(tid)].get();
        std::uint64_t* sn = seen[static_cast<std::size_t>(tid)].get();
        std::fill_n(h, kLanes * V, std::int64_t{0});
        std::fill_n(sn, V, kNeverSeen);
        std::int64_t my_bad = kNoBad;
        auto visit = [&](std::int32_t id, std::size_t lane, std::uint64_t row_hi) -> std::int32_t {
            ++h[lane * V + static_cast<std::size_t>(id)];
            const std::uint64_t x = sn[id];
            const std::uint32_t fresh = (x & kRowMask) != row_hi;
            sn[id] = row_hi | static_cast<std::uint32_t>(x + fresh);
            return static_cast<std::int32_t>(fresh);
        };
#if TRITONDIV_HAVE_OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
        for (std::int64_t ch = 0; ch < nchunks; ++ch) {
            for (std::size_t r = bounds[static_cast<std::size_t>(ch)]; r < bounds[static_cast<std::size_t>(ch) + 1];
                 ++r) {
                const std::int64_t b = off[r], e = off[r + 1];
                const std::uint64_t row_hi = static_cast<std::uint64_t>(r) << 32;
                // validate the row first (a sequential scan of ids about to be read again
                // from L1) so every table access below is in range; the call throws on the
                // first bad position after the region
                const std::int64_t stop = valid_end(ids, b, e, vocab, my_bad);
                std::int32_t nd = 0;
                std::int64_t p = b;
                for (; p + static_cast<std::int64_t>(kLanes) <= stop; p += kLanes)
                    for (std::size_t k = 0; k < kLanes; ++k) nd += visit(ids[p + static_cast<std::int64_t>(k)], k, row_hi);
                for (; p < stop; ++p) nd += visit(ids[p], 0, row_hi);
                out.lengths[r] = e - b;
                out.distinct[r] = nd;
            }
        }
        bad[static_cast<std::size_t>(tid)] = my_bad;
    }
    rethrow_bad(t, bad, vocab);

    out.counts.assign(V, 0);
    out.df.assign(V, 0);
    const auto Vs = static_cast<std::int64_t>(V);
#if TRITONDIV_HAVE_OPENMP
#pragma omp parallel for schedule(static) num_threads(T)
#endif
    for (std::int64_t v = 0; v < Vs; ++v) {
        const auto uv = static_cast<std::size_t>(v);
        std::int64_t cs = 0, ds = 0;
        for (std::size_t th = 0; th < static_cast<std::size_t>(team); ++th) {
            for (std::size_t k = 0; k < kLanes; ++k) cs += hist[th][k * V + uv];
            ds += static_cast<std::uint32_t>(seen[th][uv]);
        }
        out.counts[uv] = cs;
        out.df[uv] = ds;
    }
    return out;
}

// ---- frequency bands and the sample -> mid-band-type incidence ------------------------

BandIncidence band_incidence(const CsrView<std::int32_t>& t, std::int32_t vocab,
                             Span<const std::int64_t> counts, std::int64_t lo, std::int64_t hi) {
    check_vocab(vocab);
    if (counts.size != static_cast<std::size_t>(vocab))
        throw std::invalid_argument("counts must have vocab_size=" + std::to_string(vocab) +
                                    " entries, got " + std::to_string(counts.size));
    if (lo < 1) throw std::invalid_argument("lo must be >= 1, got " + std::to_string(lo));
    if (hi < lo)
        throw std::invalid_argument("hi must be >= lo, got lo=" + std::to_string(lo) +
                                    ", hi=" + std::to_string(hi));
    BandIncidence out;
    std::vector<std::int32_t> map(static_cast<std::size_t>(vocab), -1);
    for (std::int32_t v = 0; v < vocab; ++v) {
        const std::int64_t c = counts[static_cast<std::size_t>(v)];
        if (c >= lo && c <= hi) {
            map[static_cast<std::size_t>(v)] = static_cast<std::int32_t>(out.band_tokens.size());
            out.band_tokens.push_back(v);
        }
    }
    const std::size_t B = out.band_tokens.size();
    const std::size_t rows = t.rows();
    const int T = num_threads();
    const auto bounds = row_chunks(t, T);
    const auto nchunks = static_cast<std::int64_t>(bounds.size() - 1);
    std::vector<std::vector<std::int32_t>> chunk_types(static_cast<std::size_t>(nchunks));
    std::vector<std::int64_t> row_len(rows, 0);
    std::vector<std::int64_t> bad(static_cast<std::size_t>(T), kNoBad);
    // per-thread row stamps, allocated before the region
    std::vector<std::vector<std::int64_t>> stamps(static_cast<std::size_t>(T),
                                                  std::vector<std::int64_t>(B, -1));
    ExceptionCapture cap;
    const std::int64_t* off = t.offsets.data;
    const std::int32_t* ids = t.values.data;
    const std::int32_t* mp = map.data();

#if TRITONDIV_HAVE_OPENMP
#pragma omp parallel num_threads(T)
#endif
    {
        const int tid = thread_id();
        std::int64_t my_bad = kNoBad;
#if TRITONDIV_HAVE_OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
        for (std::int64_t ch = 0; ch < nchunks; ++ch) {
            if (cap.failed()) continue;
            cap.run([&] {
                std::int64_t* stamp = stamps[static_cast<std::size_t>(tid)].data();
                auto& vals = chunk_types[static_cast<std::size_t>(ch)];
                for (std::size_t r = bounds[static_cast<std::size_t>(ch)];
                     r < bounds[static_cast<std::size_t>(ch) + 1]; ++r) {
                    const auto row = static_cast<std::int64_t>(r);
                    const std::size_t start = vals.size();
                    for (std::int64_t p = off[r]; p < off[r + 1]; ++p) {
                        const std::int32_t id = ids[p];
                        if (out_of_range(id, vocab)) {
                            my_bad = std::min(my_bad, p);
                            break;
                        }
                        const std::int32_t m = mp[id];
                        if (m >= 0 && stamp[m] != row) {
                            stamp[m] = row;
                            vals.push_back(m);
                        }
                    }
                    std::sort(vals.begin() + static_cast<std::ptrdiff_t>(start), vals.end());
                    row_len[r] = static_cast<std::int64_t>(vals.size() - start);
                }
            });
        }
        bad[static_cast<std::size_t>(tid)] = my_bad;
    }
    cap.rethrow();
    rethrow_bad(t, bad, vocab);

    auto& inc = out.incidence;
    inc.offsets.assign(rows + 1, 0);
    for (std::size_t r = 0; r < rows; ++r) inc.offsets[r + 1] = inc.offsets[r] + row_len[r];
    inc.values.resize(static_cast<std::size_t>(inc.offsets[rows]));
#if TRITONDIV_HAVE_OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(T)
#endif
    for (std::int64_t ch = 0; ch < nchunks; ++ch) {
        const auto& vals = chunk_types[static_cast<std::size_t>(ch)];
        std::copy(vals.begin(), vals.end(),
                  inc.values.begin() + inc.offsets[bounds[static_cast<std::size_t>(ch)]]);
    }
    return out;
}

// ---- distinct n-grams -----------------------------------------------------------------

namespace {

// A zeroed bitmap of `words` 64-bit words. Fresh pages cost a page fault each on first
// touch (~0.3 s for the 128 MiB bitmap of a 32k vocabulary on the reference machine), so one
// process-wide bitmap (at most 256 MiB) is kept for reuse and handed back cleared; a call
// that finds it in use gets a private one.
constexpr std::size_t bitmap_words(std::uint64_t V) { return static_cast<std::size_t>((V * V + 63) / 64); }
constexpr std::uint64_t kMaxBitmapVocab = 46341;  // V * V < 2^32: pair codes fit 32 bits

class BitmapLease {
   public:
    // `words` zeroed words; they must be handed back all zero.
    explicit BitmapLease(std::size_t words) {
        if (mu().try_lock()) {
            shared_ = true;
            auto& ws = zeroed();
            if (ws.size() < words) {
                ws.clear();
                ws.shrink_to_fit();
                ws.assign(words, 0);
            }
            bits_ = ws.data();
        } else {
            own_.assign(words, 0);
            bits_ = own_.data();
        }
    }
    ~BitmapLease() {
        if (shared_) mu().unlock();
    }
    BitmapLease(const BitmapLease&) = delete;
    BitmapLease& operator=(const BitmapLease&) = delete;
    std::uint64_t* bits() const { return bits_; }

   private:
    static std::mutex& mu() {
        static std::mutex m;
        return m;
    }
    static std::vector<std::uint64_t>& zeroed() {
        static std::vector<std::uint64_t> ws;
        return ws;
    }
    bool shared_ = false;
    std::vector<std::uint64_t> own_;
    std::uint64_t* bits_ = nullptr;
};

// Distinct bigrams with an exact bitmap over (rank(a), rank(b)) pairs, ranks by decreasing
// frequency, so the frequent pairs share a few megabytes at the start of the bitmap that
// stay cached. Each row's pair codes are staged in a small buffer first (sequential work),
// then applied with a software prefetch kPrefetch codes ahead: the bitmap accesses are
// random, and issuing them early overlaps their cache misses. Threads share the bitmap:
// test first (most pairs repeat, and a read keeps the line shared between cores), atomic
// OR only for a new pair. Bits are only ever set, so the count is the same for any thread
// count and interleaving. (Measured on the reference machine, 256M Zipf bigrams: 1.1-1.3 s
// on 2 threads, against 2.9 s for bucketing the codes by L2-sized slice first: with skewed
// data the hot slices are cached anyway and the cold ones get too few codes per batch.)
constexpr std::size_t kPrefetch = 16;
constexpr std::size_t kStageCodes = 4096;

std::int64_t distinct_bigrams_bitmap(const CsrView<std::int32_t>& t, std::int32_t vocab,
                                     Span<const std::int64_t> counts, std::vector<std::int64_t>& bad, int T) {
    const auto V = static_cast<std::uint32_t>(vocab);
    std::vector<std::uint32_t> rank(static_cast<std::size_t>(vocab));
    {
        std::vector<std::int32_t> order(static_cast<std::size_t>(vocab));
        for (std::int32_t v = 0; v < vocab; ++v) order[static_cast<std::size_t>(v)] = v;
        std::stable_sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) {
            return counts[static_cast<std::size_t>(a)] > counts[static_cast<std::size_t>(b)];
        });
        for (std::size_t i = 0; i < order.size(); ++i)
            rank[static_cast<std::size_t>(order[i])] = static_cast<std::uint32_t>(i);
    }
    const std::uint32_t* rk = rank.data();
    const std::int64_t* off = t.offsets.data;
    const std::int32_t* ids = t.values.data;
    const std::size_t words = bitmap_words(V);
    const auto bounds = row_chunks(t, T);
    const auto nchunks = static_cast<std::int64_t>(bounds.size() - 1);
    BitmapLease lease(words);
    std::uint64_t* bw = lease.bits();
    ExceptionCapture cap;
    // per-thread staging buffers, allocated before the region (a long row grows its
    // thread's buffer inside the region, under the capture)
    std::vector<std::vector<std::uint32_t>> staging(static_cast<std::size_t>(T),
                                                    std::vector<std::uint32_t>(kStageCodes));

#if TRITONDIV_HAVE_OPENMP
#pragma omp parallel num_threads(T)
#endif
    {
        const int tid = thread_id();
        std::int64_t my_bad = kNoBad;
        std::vector<std::uint32_t>& codes = staging[static_cast<std::size_t>(tid)];
        std::size_t staged = 0;
        auto apply = [&] {
            const std::uint32_t* c = codes.data();
            for (std::size_t i = 0; i < staged; ++i) {
                if (i + kPrefetch < staged) __builtin_prefetch(bw + (c[i + kPrefetch] >> 6), 0);
                std::uint64_t* w = bw + (c[i] >> 6);
                const std::uint64_t m = 1ULL << (c[i] & 63);
                if (!(__atomic_load_n(w, __ATOMIC_RELAXED) & m)) __atomic_fetch_or(w, m, __ATOMIC_RELAXED);
            }
            staged = 0;
        };
#if TRITONDIV_HAVE_OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
        for (std::int64_t ch = 0; ch < nchunks; ++ch) {
            if (cap.failed()) continue;
            cap.run([&] {
                for (std::size_t r = bounds[static_cast<std::size_t>(ch)];
                     r < bounds[static_cast<std::size_t>(ch) + 1]; ++r) {
                    const std::int64_t b = off[r], e = off[r + 1];
                    // a row stops at its first bad id (the call then throws)
                    const std::int64_t stop = valid_end(ids, b, e, vocab, my_bad);
                    if (stop - b < 2) continue;
                    const auto n = static_cast<std::size_t>(stop - b - 1);
                    if (staged + n > codes.size()) apply();
                    if (n > codes.size()) codes.resize(n);
                    std::uint32_t* c = codes.data() + staged;
                    std::uint32_t prev = rk[ids[b]] * V;
                    for (std::size_t i = 0; i < n; ++i) {
                        const std::uint32_t rb = rk[ids[b + 1 + static_cast<std::int64_t>(i)]];
                        c[i] = prev + rb;
                        prev = rb * V;
                    }
                    staged += n;
                }
                apply();
            });
        }
        bad[static_cast<std::size_t>(tid)] = std::min(bad[static_cast<std::size_t>(tid)], my_bad);
    }
    cap.rethrow();
    std::int64_t distinct = 0;
    const auto nw = static_cast<std::int64_t>(words);
#if TRITONDIV_HAVE_OPENMP
#pragma omp parallel for schedule(static) reduction(+ : distinct) num_threads(T)
#endif
    for (std::int64_t i = 0; i < nw; ++i) {
        distinct += __builtin_popcountll(bw[i]);
        bw[i] = 0;  // hand the workspace back cleared
    }
    return distinct;
}

}  // namespace

NgramCount distinct_ngrams(const CsrView<std::int32_t>& t, std::int32_t vocab, int n,
                           Span<const std::int64_t> counts) {
    check_vocab(vocab);
    check_n(n);
    if (!counts.empty() && counts.size != static_cast<std::size_t>(vocab))
        throw std::invalid_argument("counts must be empty or have vocab_size=" + std::to_string(vocab) +
                                    " entries, got " + std::to_string(counts.size));
    NgramCount out;
    out.total = total_ngrams(t, n);
    const int T = num_threads();
    std::vector<std::int64_t> bad(static_cast<std::size_t>(T), kNoBad);
    const std::size_t rows = t.rows();
    const std::int64_t* off = t.offsets.data;
    const std::int32_t* ids = t.values.data;

    if (n == 1) {
        // Distinct ids: the ids with a non-zero count (one counting pass, which validates).
        for (std::int64_t c : token_counts(t, vocab).counts) out.distinct += c > 0;
        return out;
    }
    // Exact bitmap for bigrams when it is small next to the data it summarizes.
    const auto V = static_cast<std::uint64_t>(vocab);
    if (n == 2 && V <= kMaxBitmapVocab && bitmap_words(V) <= static_cast<std::uint64_t>(out.total) * 8) {
        std::vector<std::int64_t> own;
        if (counts.empty()) {
            own = token_counts(t, vocab).counts;  // also validates the ids
            counts = Span<const std::int64_t>(own.data(), own.size());
        }
        out.distinct = distinct_bigrams_bitmap(t, vocab, counts, bad, T);
        rethrow_bad(t, bad, vocab);
        return out;
    }
    if (out.total == 0) {
        // Still validate the ids.
        (void)token_counts(t, vocab);
        return out;
    }
    // Hash sets partitioned by the keys' high bits into S slices; each slice is counted by
    // one thread scanning every sample, so no set is shared and the count is exact.
    // Slices per thread bound the memory: about 16 bytes per distinct key per live slice.
    const std::int64_t budget = std::int64_t(1) << 30;
    const std::int64_t per_thread = std::max<std::int64_t>(1, (out.total * 16 + budget - 1) / budget);
    const std::int64_t S = static_cast<std::int64_t>(T) * per_thread;
    std::vector<std::int64_t> slice_distinct(static_cast<std::size_t>(S), 0);
    ExceptionCapture cap;
    const std::size_t init_cap =
        next_pow2(static_cast<std::size_t>(std::min<std::int64_t>(out.total / S * 2 + 16, 1 << 16)));
#if TRITONDIV_HAVE_OPENMP
#pragma omp parallel num_threads(T)
#endif
    {
        const int tid = thread_id();
        std::int64_t my_bad = kNoBad;
        KeySet set;
#if TRITONDIV_HAVE_OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
        for (std::int64_t s = 0; s < S; ++s) {
            if (cap.failed()) continue;
            cap.run([&] {
                set.reset(init_cap);
                const auto us = static_cast<std::uint64_t>(s), uS = static_cast<std::uint64_t>(S);
                for (std::size_t r = 0; r < rows; ++r) {
                    const std::int64_t b = off[r], e = off[r + 1];
                    const bool ok = valid_end(ids, b, e, vocab, my_bad) == e;
                    if (!ok) continue;
                    for (std::int64_t p = b; p + n <= e; ++p) {
                        const std::uint64_t k = ngram_key(ids + p, n);
                        if (((k >> 32) * uS >> 32) == us) set.insert(k);
                    }
                }
                slice_distinct[static_cast<std::size_t>(s)] = set.size();
            });
        }
        bad[static_cast<std::size_t>(tid)] = my_bad;
    }
    cap.rethrow();
    rethrow_bad(t, bad, vocab);
    for (std::int64_t d : slice_distinct) out.distinct += d;
    return out;
}

std::vector<std::int64_t> distinct_ngrams_per_sample(const CsrView<std::int32_t>& t, std::int32_t vocab,
                                                     int n) {
    check_vocab(vocab);
    check_n(n);
    const std::size_t rows = t.rows();
    std::vector<std::int64_t> out(rows, 0);
    const int T = num_threads();
    const auto bounds = row_chunks(t, T);
    const auto nchunks = static_cast<std::int64_t>(bounds.size() - 1);
    std::vector<std::int64_t> bad(static_cast<std::size_t>(T), kNoBad);
    const std::int64_t* off = t.offsets.data;
    const std::int32_t* ids = t.values.data;
    ExceptionCapture cap;
#if TRITONDIV_HAVE_OPENMP
#pragma omp parallel num_threads(T)
#endif
    {
        const int tid = thread_id();
        std::int64_t my_bad = kNoBad;
        std::vector<std::uint64_t> table;
#if TRITONDIV_HAVE_OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
        for (std::int64_t ch = 0; ch < nchunks; ++ch) {
            if (cap.failed()) continue;
            cap.run([&] {
                for (std::size_t r = bounds[static_cast<std::size_t>(ch)];
                     r < bounds[static_cast<std::size_t>(ch) + 1]; ++r) {
                    const std::int64_t b = off[r], e = off[r + 1];
                    const bool ok = valid_end(ids, b, e, vocab, my_bad) == e;
                    const std::int64_t m = e - b - n + 1;
                    if (!ok || m <= 0) continue;
                    // A per-row table of 2m..4m slots, cleared per row (O(row length)).
                    const std::size_t cap_pow2 = next_pow2(static_cast<std::size_t>(2 * m));
                    if (table.size() < cap_pow2) table.resize(cap_pow2);
                    std::fill(table.begin(), table.begin() + static_cast<std::ptrdiff_t>(cap_pow2), 0);
                    const std::size_t mask = cap_pow2 - 1;
                    std::int64_t distinct = 0;
                    bool zero = false;
                    for (std::int64_t p = b; p + n <= e; ++p) {
                        const std::uint64_t k = ngram_key(ids + p, n);
                        if (k == 0) {
                            zero = true;
                            continue;
                        }
                        std::size_t i = static_cast<std::size_t>(k) & mask;
                        while (table[i] != 0 && table[i] != k) i = (i + 1) & mask;
                        if (table[i] == 0) {
                            table[i] = k;
                            ++distinct;
                        }
                    }
                    out[r] = distinct + (zero ? 1 : 0);
                }
            });
        }
        bad[static_cast<std::size_t>(tid)] = my_bad;
    }
    cap.rethrow();
    rethrow_bad(t, bad, vocab);
    return out;
}

double entropy_nats(Span<const std::int64_t> counts) {
    long double total = 0, s = 0;
    for (std::size_t i = 0; i < counts.size; ++i) {
        const std::int64_t c = counts[i];
        if (c < 0) throw std::invalid_argument("counts must be >= 0: counts[" + std::to_string(i) + "] = " +
                                               std::to_string(c));
        if (c > 0) {
            total += c;
            s += static_cast<long double>(c) * std::log(static_cast<long double>(c));
        }
    }
    if (total <= 0) return 0.0;
    const long double h = std::log(total) - s / total;
    return static_cast<double>(std::max<long double>(h, 0));
}

}  // namespace tritondiv
