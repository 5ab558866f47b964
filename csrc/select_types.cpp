// Reverse greedy type pruning (the paper's Algorithm 1) and balanced greedy sampling
// (Algorithm 2) over a sample -> types incidence.
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "select.hpp"

namespace tritondiv {

std::vector<std::int64_t> seeded_ranks(std::int64_t n, std::uint64_t seed) {
    std::vector<std::int64_t> perm(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) perm[i] = i;
    SplitMix64 rng(seed);
    for (std::int64_t i = n - 1; i > 0; --i) {
        const auto j = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(i + 1)));
        std::swap(perm[i], perm[j]);
    }
    std::vector<std::int64_t> rank(static_cast<std::size_t>(n));
    for (std::int64_t p = 0; p < n; ++p) rank[perm[p]] = p;
    return rank;
}

namespace {

void check_incidence(const CsrView<std::int32_t>& inc, std::int64_t n_types) {
    check_csr(inc, "incidence");
    if (n_types < 0) throw std::invalid_argument("n_types must be >= 0, got " + std::to_string(n_types));
    // type ids are int32, so at most 2^31 types can be named
    if (n_types > (std::int64_t{1} << 31))
        throw std::invalid_argument("n_types = " + std::to_string(n_types) +
                                    " exceeds 2^31 (type ids are int32)");
    for (std::size_t e = 0; e < inc.values.size; ++e) {
        const auto t = inc.values[e];
        if (t < 0 || t >= n_types)
            throw std::invalid_argument("incidence: type id " + std::to_string(t) + " at position " +
                                        std::to_string(e) + " is outside [0, n_types=" +
                                        std::to_string(n_types) + ")");
    }
}

// Min-heap of type ids keyed by (support, rank) with decrease-key.
class TypeHeap {
   public:
    TypeHeap(const std::vector<std::int64_t>& support, const std::vector<std::int64_t>& rank,
             std::int64_t n_types)
        : sup_(support), rank_(rank), pos_(static_cast<std::size_t>(n_types), -1) {}
    bool less(std::int32_t a, std::int32_t b) const {
        return sup_[a] != sup_[b] ? sup_[a] < sup_[b] : rank_[a] < rank_[b];
    }
    void build(std::vector<std::int32_t> items) {
        h_ = std::move(items);
        for (std::size_t i = 0; i < h_.size(); ++i) pos_[h_[i]] = static_cast<std::int64_t>(i);
        for (std::int64_t i = static_cast<std::int64_t>(h_.size()) / 2 - 1; i >= 0; --i) down(i);
    }
    bool empty() const { return h_.empty(); }
    bool contains(std::int32_t t) const { return pos_[t] >= 0; }
    std::int32_t pop() {
        const auto top = h_[0];
        pos_[top] = -1;
        const auto last = h_.back();
        h_.pop_back();
        if (!h_.empty()) {
            h_[0] = last;
            pos_[last] = 0;
            down(0);
        }
        return top;
    }
    void decreased(std::int32_t t) { up(pos_[t]); }

   private:
    void up(std::int64_t i) {
        const auto t = h_[i];
        while (i > 0) {
            const auto p = (i - 1) / 2;
            if (!less(t, h_[p])) break;
            h_[i] = h_[p];
            pos_[h_[i]] = i;
            i = p;
        }
        h_[i] = t;
        pos_[t] = i;
    }
    void down(std::int64_t i) {
        const auto n = static_cast<std::int64_t>(h_.size());
        const auto t = h_[i];
        while (true) {
            auto c = 2 * i + 1;
            if (c >= n) break;
            if (c + 1 < n && less(h_[c + 1], h_[c])) ++c;
            if (!less(h_[c], t)) break;
            h_[i] = h_[c];
            pos_[h_[i]] = i;
            i = c;
        }
        h_[i] = t;
        pos_[t] = i;
    }
    const std::vector<std::int64_t>& sup_;
    const std::vector<std::int64_t>& rank_;
    std::vector<std::int64_t> pos_;
    std::vector<std::int32_t> h_;
};

}  // namespace

PruneOut prune_types(const CsrView<std::int32_t>& inc, std::int64_t n_types, std::uint64_t seed) {
    check_incidence(inc, n_types);
    const auto N = static_cast<std::int64_t>(inc.rows());
    // type -> samples (CSC) by counting sort
    std::vector<std::int64_t> support(static_cast<std::size_t>(n_types), 0);
    for (std::size_t e = 0; e < inc.values.size; ++e) ++support[inc.values[e]];
    std::vector<std::int64_t> col_off(static_cast<std::size_t>(n_types) + 1, 0);
    for (std::int64_t t = 0; t < n_types; ++t) col_off[t + 1] = col_off[t] + support[t];
    std::vector<std::int64_t> fill(col_off.begin(), col_off.end() - 1);
    std::vector<std::int64_t> col_rows(inc.values.size);
    for (std::int64_t i = 0; i < N; ++i)
        for (auto e = inc.begin(i); e < inc.end(i); ++e) col_rows[fill[inc.values[e]]++] = i;

    const auto rank = seeded_ranks(n_types, seed ^ 0x7479706573ULL);  // "types"
    std::vector<std::int32_t> carried;
    for (std::int64_t t = 0; t < n_types; ++t)
        if (support[t] > 0) carried.push_back(static_cast<std::int32_t>(t));
    PruneOut out;
    out.k_max = static_cast<std::int64_t>(carried.size());
    const auto K = out.k_max;
    TypeHeap heap(support, rank, n_types);
    heap.build(std::move(carried));

    out.sample_step.assign(static_cast<std::size_t>(N), K);
    out.removal_order.reserve(static_cast<std::size_t>(K));
    out.removal_support.reserve(static_cast<std::size_t>(K));
    std::int64_t step = 0;
    while (!heap.empty()) {
        const auto t = heap.pop();
        out.removal_order.push_back(t);
        out.removal_support.push_back(support[t]);
        for (auto e = col_off[t]; e < col_off[t + 1]; ++e) {
            const auto i = col_rows[e];
            if (out.sample_step[i] != K) continue;  // already removed
            out.sample_step[i] = step;
            for (auto f = inc.begin(i); f < inc.end(i); ++f) {
                const auto u = inc.values[f];
                if (u != t && heap.contains(u)) {
                    --support[u];
                    heap.decreased(u);
                }
            }
        }
        ++step;
    }
    // pool sizes and the pool order (counting sort by step, descending; index ascending)
    std::vector<std::int64_t> per_step(static_cast<std::size_t>(K) + 1, 0);
    for (std::int64_t i = 0; i < N; ++i) ++per_step[out.sample_step[i]];
    out.pool_sizes.assign(static_cast<std::size_t>(K) + 1, 0);
    // S_k keeps the samples whose step >= K - k
    std::int64_t acc = 0;
    for (std::int64_t k = 0; k <= K; ++k) {
        acc += per_step[K - k];
        out.pool_sizes[k] = acc;
    }
    std::vector<std::int64_t> start(static_cast<std::size_t>(K) + 1, 0);
    // position of step s in descending order: sum of per_step for steps > s
    std::int64_t run = 0;
    for (std::int64_t s = K; s >= 0; --s) {
        start[s] = run;
        run += per_step[s];
    }
    out.pool_order.assign(static_cast<std::size_t>(N), 0);
    for (std::int64_t i = 0; i < N; ++i) out.pool_order[start[out.sample_step[i]]++] = i;
    return out;
}

namespace {
// 16 bytes: the sample is recovered from its rank (perm[rank]), so the heap stays compact.
struct Entry {
    double gain;
    std::int32_t rank;
    std::int32_t stamp;
};
// max-heap order: larger gain first, then smaller rank
struct EntryLess {
    bool operator()(const Entry& a, const Entry& b) const {
        return a.gain != b.gain ? a.gain < b.gain : a.rank > b.rank;
    }
};
}  // namespace

GreedyOut balanced_greedy(const CsrView<std::int32_t>& inc, std::int64_t n_types,
                          Span<const std::int64_t> candidates, std::int64_t n, Concave g,
                          double quota, Span<const double> weights, double epsilon,
                          std::uint64_t seed) {
    check_incidence(inc, n_types);
    const auto N = static_cast<std::int64_t>(inc.rows());
    const auto P = static_cast<std::int64_t>(candidates.size);
    if (n < 0) throw std::invalid_argument("n must be >= 0, got " + std::to_string(n));
    if (n > P)
        throw std::invalid_argument("n = " + std::to_string(n) + " exceeds the candidate pool of " +
                                    std::to_string(P) + " samples");
    if (!weights.empty() && static_cast<std::int64_t>(weights.size) != N)
        throw std::invalid_argument("weights has " + std::to_string(weights.size) +
                                    " entries for " + std::to_string(N) + " samples");
    for (std::size_t i = 0; i < weights.size; ++i)
        if (!std::isfinite(weights[i]) || weights[i] < 0)
            throw std::invalid_argument("weights[" + std::to_string(i) + "] = " +
                                        std::to_string(weights[i]) +
                                        ": weights must be finite and >= 0");
    if (g == Concave::Min && !(quota >= 1))
        throw std::invalid_argument("quota must be >= 1 for g='min', got " + std::to_string(quota));
    {
        std::vector<char> seen(static_cast<std::size_t>(N), 0);
        for (std::int64_t p = 0; p < P; ++p) {
            const auto i = candidates[p];
            if (i < 0 || i >= N)
                throw std::invalid_argument("candidate " + std::to_string(i) + " outside [0, " +
                                            std::to_string(N) + ")");
            if (seen[i]) throw std::invalid_argument("candidate " + std::to_string(i) + " repeated");
            seen[i] = 1;
        }
    }
    // delta[c] = g(c + 1) - g(c); counts never exceed n
    std::vector<double> delta(static_cast<std::size_t>(n) + 1);
    for (std::int64_t c = 0; c <= n; ++c) {
        const double x = static_cast<double>(c);
        switch (g) {
            case Concave::Log1p: delta[c] = std::log1p(x + 1) - std::log1p(x); break;
            case Concave::Sqrt: delta[c] = std::sqrt(x + 1) - std::sqrt(x); break;
            case Concave::Min: delta[c] = (x + 1 <= quota) ? 1.0 : 0.0; break;
        }
    }
    GreedyOut out;
    out.type_counts.assign(static_cast<std::size_t>(n_types), 0);
    auto& cnt = out.type_counts;
    const auto rank = seeded_ranks(N, seed);
    auto gain_of = [&](std::int64_t i) {
        double s = 0.0;
        for (auto e = inc.begin(i); e < inc.end(i); ++e) s += delta[cnt[inc.values[e]]];
        if (!weights.empty()) s *= weights[i];
        return s;
    };
    auto take = [&](std::int64_t i, double gain) {
        out.indices.push_back(i);
        out.gains.push_back(gain);
        for (auto e = inc.begin(i); e < inc.end(i); ++e) ++cnt[inc.values[e]];
    };
    out.indices.reserve(static_cast<std::size_t>(n));
    out.gains.reserve(static_cast<std::size_t>(n));
    if (n == 0) return out;

    if (epsilon > 0) {
        // stochastic greedy: each step evaluates a seeded random subset of the remaining
        if (!(epsilon < 1))
            throw std::invalid_argument("epsilon must lie in (0, 1), got " + std::to_string(epsilon));
        std::vector<std::int64_t> rem(candidates.begin(), candidates.end());
        SplitMix64 rng(seed ^ 0x73746f6368ULL);
        // computed in double and clamped to P before the cast: a tiny epsilon (1 / epsilon
        // = inf) would otherwise convert inf to int64 (undefined)
        const double s_real =
            std::ceil(static_cast<double>(P) / static_cast<double>(n) * std::log(1.0 / epsilon));
        const auto s_size = s_real >= static_cast<double>(P) ? P : static_cast<std::int64_t>(s_real);
        for (std::int64_t step = 0; step < n; ++step) {
            const auto R = static_cast<std::int64_t>(rem.size());
            const auto s = std::max<std::int64_t>(1, std::min(R, s_size));
            std::int64_t best_pos = -1;
            double best_gain = 0;
            for (std::int64_t a = 0; a < s; ++a) {
                const auto b = a + static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(R - a)));
                std::swap(rem[a], rem[b]);
                const double gv = gain_of(rem[a]);
                ++out.evaluations;
                if (best_pos < 0 || gv > best_gain ||
                    (gv == best_gain && rank[rem[a]] < rank[rem[best_pos]])) {
                    best_pos = a;
                    best_gain = gv;
                }
            }
            take(rem[best_pos], best_gain);
            rem[best_pos] = rem.back();
            rem.pop_back();
        }
        return out;
    }

    // lazy greedy: stored gains are upper bounds (g concave => gains only shrink); an entry
    // evaluated at the current step is exact, so taking it reproduces plain greedy with the
    // (gain desc, rank asc) order.
    if (N > 2147483647 || n > 2147483647)
        throw std::invalid_argument("balanced greedy supports up to 2^31 - 1 samples");
    std::vector<std::int64_t> perm(static_cast<std::size_t>(N));
    for (std::int64_t i = 0; i < N; ++i) perm[rank[i]] = i;
    std::vector<Entry> heap(static_cast<std::size_t>(P));
#if TRITONDIV_HAVE_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (std::int64_t p = 0; p < P; ++p) {
        const auto i = candidates[p];
        heap[p] = Entry{gain_of(i), static_cast<std::int32_t>(rank[i]), 0};
    }
    out.evaluations += P;
    EntryLess less;
    std::make_heap(heap.begin(), heap.end(), less);
    std::int32_t step = 0;
    while (step < n) {
        std::pop_heap(heap.begin(), heap.end(), less);
        Entry e = heap.back();
        heap.pop_back();
        if (e.stamp != step) {
            e.gain = gain_of(perm[e.rank]);
            e.stamp = step;
            ++out.evaluations;
            // still ahead of every other (upper-bound) entry: take it without a round trip
            if (!heap.empty() && less(e, heap.front())) {
                heap.push_back(e);
                std::push_heap(heap.begin(), heap.end(), less);
                continue;
            }
        }
        take(perm[e.rank], e.gain);
        ++step;
    }
    return out;
}

}  // namespace tritondiv
