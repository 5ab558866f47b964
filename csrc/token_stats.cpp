// Token statistics kernels (see token_stats.hpp).
#include "token_stats.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <string>

namespace tritondiv {

namespace {

constexpr std::int64_t kNoBad = std::numeric_limits<std::int64_t>::max();

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

    TokenCounts out;
    out.lengths.resize(rows);
    out.distinct.resize(rows);
    // Per thread, one record per token id: occurrences, document frequency, last row seen
    // (kept together so a random id touches one cache line).
    struct Cell {
        std::int64_t count;
        std::int64_t df;
        std::int64_t last;
    };
    std::vector<std::vector<Cell>> cells(static_cast<std::size_t>(T));
    std::vector<std::int64_t> bad(static_cast<std::size_t>(T), kNoBad);
    const std::int64_t* off = t.offsets.data;
    const std::int32_t* ids = t.values.data;

#if TRITONDIV_HAVE_OPENMP
#pragma omp parallel num_threads(T)
#endif
    {
        const int tid = thread_id();
        auto& mine = cells[static_cast<std::size_t>(tid)];
        mine.assign(V, Cell{0, 0, -1});  // each thread first-touches its own histogram
        Cell* c = mine.data();
        std::int64_t my_bad = kNoBad;
#if TRITONDIV_HAVE_OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
        for (std::int64_t ch = 0; ch < nchunks; ++ch) {
            for (std::size_t r = bounds[static_cast<std::size_t>(ch)]; r < bounds[static_cast<std::size_t>(ch) + 1];
                 ++r) {
                const std::int64_t b = off[r], e = off[r + 1];
                const auto row = static_cast<std::int64_t>(r);
                std::int32_t nd = 0;
                for (std::int64_t p = b; p < e; ++p) {
                    const std::int32_t id = ids[p];
                    if (out_of_range(id, vocab)) {
                        my_bad = std::min(my_bad, p);
                        break;
                    }
                    // Branch-free: whether the id is new in this row is unpredictable.
                    Cell& cell = c[id];
                    const std::int64_t fresh = cell.last != row;
                    ++cell.count;
                    cell.last = row;
                    cell.df += fresh;
                    nd += static_cast<std::int32_t>(fresh);
                }
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
        std::int64_t cs = 0, ds = 0;
        for (const auto& th : cells) {
            cs += th[static_cast<std::size_t>(v)].count;
            ds += th[static_cast<std::size_t>(v)].df;
        }
        out.counts[static_cast<std::size_t>(v)] = cs;
        out.df[static_cast<std::size_t>(v)] = ds;
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
    std::vector<std::vector<std::int64_t>> stamps(static_cast<std::size_t>(T));
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
        cap.run([&] { stamps[static_cast<std::size_t>(tid)].assign(B, -1); });
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
// process-wide workspace is kept for reuse (the bitmap, at most 256 MiB, and the bucket
// buffers, 16 MiB per thread) and
// handed back cleared; a call that finds it in use gets a private bitmap.
constexpr std::size_t bitmap_words(std::uint64_t V) { return static_cast<std::size_t>((V * V + 63) / 64); }
constexpr std::uint64_t kMaxBitmapVocab = 46341;

class BitmapLease {
   public:
    // `words` zeroed words (bits()) and `extra` words of scratch (scratch()). The bitmap
    // must be handed back all zero; the scratch may hold anything.
    BitmapLease(std::size_t words, std::size_t extra) {
        if (mu().try_lock()) {
            shared_ = true;
            auto& ws = zeroed();
            if (ws.size() < words) {
                ws.clear();
                ws.shrink_to_fit();
                ws.assign(words, 0);
            }
            auto& sc = scratch_ws();
            if (sc.size() < extra) {
                sc.clear();
                sc.shrink_to_fit();
                sc.resize(extra);
            }
            bits_ = ws.data();
            scratch_ = sc.data();
        } else {
            own_bits_.assign(words, 0);
            own_scratch_.resize(extra);
            bits_ = own_bits_.data();
            scratch_ = own_scratch_.data();
        }
    }
    ~BitmapLease() {
        if (shared_) mu().unlock();
    }
    BitmapLease(const BitmapLease&) = delete;
    BitmapLease& operator=(const BitmapLease&) = delete;
    std::uint64_t* bits() const { return bits_; }
    std::uint64_t* scratch() const { return scratch_; }

   private:
    static std::mutex& mu() {
        static std::mutex m;
        return m;
    }
    static std::vector<std::uint64_t>& zeroed() {
        static std::vector<std::uint64_t> ws;
        return ws;
    }
    static std::vector<std::uint64_t>& scratch_ws() {
        static std::vector<std::uint64_t> ws;
        return ws;
    }
    bool shared_ = false;
    std::vector<std::uint64_t> own_bits_, own_scratch_;
    std::uint64_t* bits_ = nullptr;
    std::uint64_t* scratch_ = nullptr;
};

// Distinct bigrams with an exact bitmap over (rank(a), rank(b)) pairs, ranks by decreasing
// frequency. Setting bits straight from the token stream is a random access into V*V bits
// (128 MiB for 32k ids) per bigram, latency-bound. Instead each thread turns a block of its
// samples into 32-bit pair codes bucketed by bitmap slice (kSliceShift: 512 KiB slices that
// stay in L2), then fills the bitmap one slice at a time. No barriers: each thread works
// through its own rows; the bitmap's bits are only ever set, so the result is the same for
// any thread count and interleaving.
constexpr int kSliceShift = 22;
constexpr std::int64_t kBlockCodes = std::int64_t(1) << 22;

std::int64_t distinct_bigrams_bitmap(const CsrView<std::int32_t>& t, std::int32_t vocab,
                                     Span<const std::int64_t> counts, std::vector<std::int64_t>& bad, int T) {
    const auto V = static_cast<std::uint64_t>(vocab);
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
    const std::size_t rows = t.rows();
    const std::int64_t* off = t.offsets.data;
    const std::int32_t* ids = t.values.data;
    const std::size_t words = bitmap_words(V);
    const std::size_t P = static_cast<std::size_t>((V * V) >> kSliceShift) + 1;

    // Static split of the rows into T ranges of about equal tokens; block buffers sized for
    // kBlockCodes codes or the longest sample, whichever is larger.
    std::vector<std::size_t> tb(static_cast<std::size_t>(T) + 1, rows);
    tb[0] = 0;
    const auto nnz = static_cast<std::int64_t>(t.values.size);
    for (int k = 1; k < T; ++k) {
        const std::int64_t target = nnz / T * k;
        tb[static_cast<std::size_t>(k)] =
            static_cast<std::size_t>(std::lower_bound(off, off + rows + 1, target) - off);
        tb[static_cast<std::size_t>(k)] = std::min(std::max(tb[static_cast<std::size_t>(k)], tb[k - 1]), rows);
    }
    std::int64_t longest = 0;
    for (std::size_t r = 0; r < rows; ++r) longest = std::max(longest, off[r + 1] - off[r]);
    const std::size_t buf_codes = static_cast<std::size_t>(std::max(kBlockCodes, longest));
    const std::size_t buf_words = (buf_codes + 1) / 2;
    BitmapLease lease(words, buf_words * static_cast<std::size_t>(T));
    std::uint64_t* bw = lease.bits();
    std::vector<std::uint32_t*> bufs(static_cast<std::size_t>(T));
    for (int k = 0; k < T; ++k)
        bufs[static_cast<std::size_t>(k)] =
            reinterpret_cast<std::uint32_t*>(lease.scratch() + buf_words * static_cast<std::size_t>(k));
    std::vector<std::vector<std::size_t>> starts(static_cast<std::size_t>(T), std::vector<std::size_t>(P + 1));
    std::vector<std::vector<std::size_t>> cursor(static_cast<std::size_t>(T), std::vector<std::size_t>(P));

#if TRITONDIV_HAVE_OPENMP
#pragma omp parallel num_threads(T)
#endif
    for (int part = thread_id(); part < T; part += team_size()) {
        const auto ut = static_cast<std::size_t>(part);
        std::size_t r = tb[ut];
        const std::size_t rend = tb[ut + 1];
        std::int64_t my_bad = kNoBad;
        std::uint32_t* buf = bufs[ut];
        std::size_t* st = starts[ut].data();
        std::size_t* cur = cursor[ut].data();
        // Visits the codes of rows [r0, r1) (each row stops at its first bad id).
        auto for_codes = [&](std::size_t r0, std::size_t r1, bool record, auto&& f) {
            for (std::size_t q = r0; q < r1; ++q) {
                const std::int64_t b = off[q], e = off[q + 1];
                if (b == e) continue;
                if (out_of_range(ids[b], vocab)) {
                    if (record) my_bad = std::min(my_bad, b);
                    continue;
                }
                std::uint32_t prev = rk[ids[b]] * static_cast<std::uint32_t>(V);
                for (std::int64_t p = b + 1; p < e; ++p) {
                    const std::int32_t id = ids[p];
                    if (out_of_range(id, vocab)) {
                        if (record) my_bad = std::min(my_bad, p);
                        break;
                    }
                    const std::uint32_t rb = rk[id];
                    f(prev + rb);
                    prev = rb * static_cast<std::uint32_t>(V);
                }
            }
        };
        for (;;) {
            // Phase 1: this thread's next block, bucketed by slice (count, then scatter).
            std::size_t r2 = r;
            std::int64_t n_codes = 0;
            while (r2 < rend) {
                const std::int64_t c = std::max<std::int64_t>(0, off[r2 + 1] - off[r2] - 1);
                if (n_codes > 0 && n_codes + c > kBlockCodes) break;
                n_codes += c;
                ++r2;
            }
            std::fill(st, st + P + 1, std::size_t(0));
            for_codes(r, r2, true, [&](std::uint32_t code) { ++st[(code >> kSliceShift) + 1]; });
            for (std::size_t p = 0; p < P; ++p) {
                st[p + 1] += st[p];
                cur[p] = st[p];
            }
            for_codes(r, r2, false, [&](std::uint32_t code) { buf[cur[code >> kSliceShift]++] = code; });
            r = r2;
            // Phase 2: apply the buckets slice by slice (each slice stays in L2 while it is
            // filled). Threads share the bitmap: test first (most pairs repeat, and a read
            // keeps the line shared between cores), atomic OR only for a new pair.
            // The buckets lie in slice order, so this is one pass over the buffer.
            for (std::size_t i = 0; i < st[P]; ++i) {
                const std::uint32_t code = buf[i];
                std::uint64_t* w = bw + (code >> 6);
                const std::uint64_t m = 1ULL << (code & 63);
                if (!(__atomic_load_n(w, __ATOMIC_RELAXED) & m)) __atomic_fetch_or(w, m, __ATOMIC_RELAXED);
            }
            if (r >= rend) break;
        }
        bad[ut] = std::min(bad[ut], my_bad);
    }
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
                    bool ok = true;
                    for (std::int64_t p = b; p < e; ++p) {
                        if (out_of_range(ids[p], vocab)) {
                            my_bad = std::min(my_bad, p);
                            ok = false;
                            break;
                        }
                    }
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
                    bool ok = true;
                    for (std::int64_t p = b; p < e; ++p) {
                        if (out_of_range(ids[p], vocab)) {
                            my_bad = std::min(my_bad, p);
                            ok = false;
                            break;
                        }
                    }
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
