// Binding of the token statistics kernels (csrc/token_stats.hpp). Binds only: checks the
// arrays, releases the GIL, converts std::invalid_argument into ValueError.
#include <pybind11/pybind11.h>

#include "bind_common.hpp"
#include "token_stats.hpp"

namespace tritondiv::bind {

namespace {

CsrView<std::int32_t> tokens_view(const py::array_t<std::int64_t, py::array::c_style>& offsets,
                                  const py::array_t<std::int32_t, py::array::c_style>& ids) {
    return csr_view<std::int32_t>(offsets, ids, "tokens");
}

}  // namespace

void bind_token_stats(py::module_& m) {
    m.def(
        "token_counts",
        [](const py::object& offsets_obj, const py::object& ids_obj, std::int32_t vocab_size) {
            auto offsets = checked_array<std::int64_t>(offsets_obj, "offsets", 1);
            auto ids = checked_array<std::int32_t>(ids_obj, "ids", 1);
            auto view = tokens_view(offsets, ids);
            auto r = call_core("token_counts", [&] { return token_counts(view, vocab_size); });
            return py::make_tuple(to_numpy(std::move(r.counts)), to_numpy(std::move(r.df)),
                                  to_numpy(std::move(r.lengths)), to_numpy(std::move(r.distinct)));
        },
        py::arg("offsets"), py::arg("ids"), py::arg("vocab_size"),
        "Corpus occurrences and document frequency per token id, length and distinct ids per "
        "sample: (counts int64[V], df int64[V], lengths int64[N], distinct int32[N]).");

    m.def(
        "band_incidence",
        [](const py::object& offsets_obj, const py::object& ids_obj, std::int32_t vocab_size,
           const py::object& counts_obj, std::int64_t lo, std::int64_t hi) {
            auto offsets = checked_array<std::int64_t>(offsets_obj, "offsets", 1);
            auto ids = checked_array<std::int32_t>(ids_obj, "ids", 1);
            auto counts = checked_array<std::int64_t>(counts_obj, "counts", 1);
            auto view = tokens_view(offsets, ids);
            auto cs = span_of(counts);
            auto r = call_core("band_incidence", [&] { return band_incidence(view, vocab_size, cs, lo, hi); });
            return py::make_tuple(to_numpy(std::move(r.incidence.offsets)),
                                  to_numpy(std::move(r.incidence.values)),
                                  to_numpy(std::move(r.band_tokens)));
        },
        py::arg("offsets"), py::arg("ids"), py::arg("vocab_size"), py::arg("counts"), py::arg("lo"),
        py::arg("hi"),
        "Mid band {t: lo <= counts[t] <= hi} and the sample -> band-type incidence: "
        "(offsets int64[N+1], types int32[nnz], band_tokens int32[B]).");

    m.def(
        "distinct_ngrams",
        [](const py::object& offsets_obj, const py::object& ids_obj, std::int32_t vocab_size, int n,
           const py::object& counts_obj) {
            auto offsets = checked_array<std::int64_t>(offsets_obj, "offsets", 1);
            auto ids = checked_array<std::int32_t>(ids_obj, "ids", 1);
            auto view = tokens_view(offsets, ids);
            py::array_t<std::int64_t, py::array::c_style> counts;
            Span<const std::int64_t> cs;
            if (!counts_obj.is_none()) {
                counts = checked_array<std::int64_t>(counts_obj, "counts", 1);
                cs = span_of(counts);
            }
            auto r = call_core("distinct_ngrams", [&] { return distinct_ngrams(view, vocab_size, n, cs); });
            return py::make_tuple(r.distinct, r.total);
        },
        py::arg("offsets"), py::arg("ids"), py::arg("vocab_size"), py::arg("n"), py::arg("counts") = py::none(),
        "(distinct, total) n-grams over the whole set, n in 1..4 (64-bit keys; exact for n <= 2). "
        "counts (optional int64[V] occurrences) only speeds up n = 2.");

    m.def(
        "distinct_ngrams_per_sample",
        [](const py::object& offsets_obj, const py::object& ids_obj, std::int32_t vocab_size, int n) {
            auto offsets = checked_array<std::int64_t>(offsets_obj, "offsets", 1);
            auto ids = checked_array<std::int32_t>(ids_obj, "ids", 1);
            auto view = tokens_view(offsets, ids);
            auto r = call_core("distinct_ngrams_per_sample", [&] { return distinct_ngrams_per_sample(view, vocab_size, n); });
            return to_numpy(std::move(r));
        },
        py::arg("offsets"), py::arg("ids"), py::arg("vocab_size"), py::arg("n"),
        "Distinct n-grams within each sample (int64[N]), n in 1..4.");

    m.def(
        "entropy_nats",
        [](const py::object& counts_obj) {
            auto counts = checked_array<std::int64_t>(counts_obj, "counts", 1);
            auto cs = span_of(counts);
            return call_core("entropy_nats", [&] { return entropy_nats(cs); });
        },
        py::arg("counts"), "Shannon entropy in nats of counts / sum(counts) (0.0 when empty).");

    m.def(
        "ngram_key",
        [](const py::object& gram_obj) {
            auto gram = checked_array<std::int32_t>(gram_obj, "gram", 1);
            if (gram.size() < 1 || gram.size() > 4)
                throw py::value_error("gram: expected 1 to 4 token ids, got " + std::to_string(gram.size()));
            return ngram_key(gram.data(), static_cast<int>(gram.size()));
        },
        py::arg("gram"), "The 64-bit key of one n-gram (int32[n], n in 1..4) as used by distinct_ngrams.");
}

}  // namespace tritondiv::bind
