// Token statistics over a tokenized pool held as CSR arrays: sample i owns the token ids
// ids[offsets[i] .. offsets[i+1]), every id in [0, vocab_size).
//
// Every kernel is multi-threaded with OpenMP when available, validates its input (an id
// out of range throws std::invalid_argument naming the first bad position) and gives
// results identical for any thread count (integer reductions; serial floating sums).
#pragma once

#include <cstdint>
#include <vector>

#include "common.hpp"

namespace tritondiv {

// Corpus counts of one pass over the tokens.
struct TokenCounts {
    std::vector<std::int64_t> counts;    // occurrences of each token id, [vocab_size]
    std::vector<std::int64_t> df;        // samples holding the token at least once, [vocab_size]
    std::vector<std::int64_t> lengths;   // tokens per sample, [rows]
    std::vector<std::int32_t> distinct;  // distinct token ids per sample, [rows]
};

TokenCounts token_counts(const CsrView<std::int32_t>& tokens, std::int32_t vocab_size);

// The mid frequency band {t : lo <= counts[t] <= hi} and the sample -> mid-band-type
// incidence. Types are the band's token ids renumbered 0..B-1 in token-id order
// (band_tokens[b] is the token id of type b); each row is sorted and duplicate-free.
struct BandIncidence {
    std::vector<std::int32_t> band_tokens;
    Csr<std::int32_t> incidence;
};

BandIncidence band_incidence(const CsrView<std::int32_t>& tokens, std::int32_t vocab_size,
                             Span<const std::int64_t> counts, std::int64_t lo, std::int64_t hi);

// Distinct n-grams over the whole set (n-grams never cross a sample boundary).
//
// Keys: n <= 2 packs the ids into 64 bits exactly (then a bijective mixer), so the count is
// exact; n = 3, 4 hash the n-gram to 64 bits. Under the usual random-hash model, with m
// distinct n-grams the expected number of colliding pairs is m(m-1)/2^65 ~ m^2/2^65
// (m = 1e9 gives ~0.03), so the distinct count is exact with overwhelming probability and
// can only be under-counted.
struct NgramCount {
    std::int64_t distinct = 0;
    std::int64_t total = 0;  // sum over samples of max(0, length - n + 1)
};

// n = 2 with vocab_size <= 46341 and enough bigrams uses an exact bitmap of vocab_size^2
// bits (128 MiB for 32k ids) addressed by frequency rank, kept allocated between calls
// (first-touch page faults would otherwise dominate) and returned to all-zero after use.
// Other cases use hash sets partitioned by key. `counts` (optional, empty or [vocab_size]:
// the occurrence counts) saves the counting pass that ranks the ids; it never changes the
// result.
NgramCount distinct_ngrams(const CsrView<std::int32_t>& tokens, std::int32_t vocab_size, int n,
                           Span<const std::int64_t> counts = {});

// Distinct n-grams within each sample (same keys as above), [rows].
std::vector<std::int64_t> distinct_ngrams_per_sample(const CsrView<std::int32_t>& tokens,
                                                     std::int32_t vocab_size, int n);

// Shannon entropy, in nats, of the distribution counts / sum(counts) (0 when empty).
double entropy_nats(Span<const std::int64_t> counts);

// The 64-bit key of the n-gram p[0..n) (1 <= n <= 4); exposed for tests.
std::uint64_t ngram_key(const std::int32_t* p, int n);

}  // namespace tritondiv
