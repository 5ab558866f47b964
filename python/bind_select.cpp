// Bindings of the selection engine (csrc/select*.cpp): checks arrays, releases the GIL,
// returns numpy arrays. No selection logic here.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bind_common.hpp"
#include "select.hpp"

namespace tritondiv::bind {

void bind_select(py::module_& m) {
    m.def(
        "prune_types",
        [](const py::object& offsets, const py::object& types, std::int64_t n_types, std::uint64_t seed) {
            auto off = checked_array<std::int64_t>(offsets, "offsets", 1);
            auto ty = checked_array<std::int32_t>(types, "types", 1);
            CsrView<std::int32_t> inc{span_of(off), span_of(ty)};
            auto r = call_core("prune_types", [&] { return prune_types(inc, n_types, seed); });
            return py::make_tuple(r.k_max, to_numpy(std::move(r.removal_order)),
                                  to_numpy(std::move(r.removal_support)),
                                  to_numpy(std::move(r.sample_step)), to_numpy(std::move(r.pool_order)),
                                  to_numpy(std::move(r.pool_sizes)));
        },
        py::arg("offsets"), py::arg("types"), py::arg("n_types"), py::arg("seed"),
        "Reverse greedy type pruning; returns (k_max, removal_order int32[k_max], "
        "removal_support int64[k_max], sample_step int64[N], pool_order int64[N], "
        "pool_sizes int64[k_max + 1]) (see tritondiv.select.PruneResult).");

    m.def(
        "balanced_greedy",
        [](const py::object& offsets, const py::object& types, std::int64_t n_types,
           const py::object& candidates, std::int64_t n, int g, double quota, const py::object& weights,
           double epsilon, std::uint64_t seed) {
            auto off = checked_array<std::int64_t>(offsets, "offsets", 1);
            auto ty = checked_array<std::int32_t>(types, "types", 1);
            auto cand = checked_array<std::int64_t>(candidates, "candidates", 1);
            auto w = checked_array<double>(weights, "weights", 1);
            if (g < 0 || g > 2) throw py::value_error("g must be 0 (log1p), 1 (sqrt) or 2 (min)");
            CsrView<std::int32_t> inc{span_of(off), span_of(ty)};
            auto r = call_core("balanced_greedy", [&] {
                return balanced_greedy(inc, n_types, span_of(cand), n, static_cast<Concave>(g), quota,
                                       span_of(w), epsilon, seed);
            });
            return py::make_tuple(to_numpy(std::move(r.indices)), to_numpy(std::move(r.gains)),
                                  to_numpy(std::move(r.type_counts)), r.evaluations);
        },
        py::arg("offsets"), py::arg("types"), py::arg("n_types"), py::arg("candidates"), py::arg("n"),
        py::arg("g"), py::arg("quota"), py::arg("weights"), py::arg("epsilon"), py::arg("seed"),
        "Balanced greedy over type counts; returns (indices, gains, type_counts, evaluations).");

    m.def(
        "kcenter_greedy",
        [](const py::object& X, std::int64_t n, std::int64_t first) {
            if (!py::isinstance<py::array>(X))
                throw py::type_error("X: expected a numpy array of dtype float32 or float16");
            auto arr = py::reinterpret_borrow<py::array>(X);
            const bool f16 = same_dtype(arr, py::dtype("float16"));
            py::array a = f16 ? py::array(checked_array<std::uint16_t>(arr.view("uint16"), "X", 2))
                              : py::array(checked_array<float>(X, "X", 2));
            const auto N = static_cast<std::int64_t>(a.shape(0));
            const auto d = static_cast<std::int64_t>(a.shape(1));
            const void* p = a.data();
            auto r = call_core("kcenter_greedy", [&] { return kcenter_greedy(p, f16, N, d, n, first); });
            return py::make_tuple(to_numpy(std::move(r.indices)), to_numpy(std::move(r.sq_radii)),
                                  r.evaluations);
        },
        py::arg("X"), py::arg("n"), py::arg("first"),
        "Exact Gonzalez k-center on squared L2; returns (indices, squared radii, evaluations).");

    m.def(
        "facility_location_csr",
        [](const py::object& indptr, const py::object& indices, const py::object& data,
           std::int64_t n_cols, std::int64_t n) {
            auto ip = checked_array<std::int64_t>(indptr, "indptr", 1);
            auto ix = checked_array<std::int32_t>(indices, "indices", 1);
            auto dv = checked_array<double>(data, "data", 1);
            auto r = call_core("facility_location_csr", 
                [&] { return facility_location_csr(span_of(ip), span_of(ix), span_of(dv), n_cols, n); });
            return py::make_tuple(to_numpy(std::move(r.indices)), to_numpy(std::move(r.gains)),
                                  r.objective, r.evaluations);
        },
        py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("n_cols"), py::arg("n"),
        "Facility location lazy greedy on a CSR similarity graph (row j = candidate j).");

    m.def(
        "facility_location_dense",
        [](const py::object& G, std::int64_t n) {
            auto g = checked_array<double>(G, "graph", 2);
            const auto rows = static_cast<std::int64_t>(g.shape(0));
            const auto cols = static_cast<std::int64_t>(g.shape(1));
            const double* p = g.data();
            auto r = call_core("facility_location_dense", [&] { return facility_location_dense(p, rows, cols, n); });
            return py::make_tuple(to_numpy(std::move(r.indices)), to_numpy(std::move(r.gains)),
                                  r.objective, r.evaluations);
        },
        py::arg("graph"), py::arg("n"), "Facility location lazy greedy on a dense similarity matrix.");

    m.def(
        "threshold_filter",
        [](const py::object& Xn, std::int64_t n, double tau, const py::object& order) {
            auto x = checked_array<float>(Xn, "X", 2);
            auto o = checked_array<std::int64_t>(order, "order", 1);
            const auto N = static_cast<std::int64_t>(x.shape(0));
            const auto d = static_cast<std::int64_t>(x.shape(1));
            const float* p = x.data();
            auto r = call_core("threshold_filter", [&] { return threshold_filter(p, N, d, n, tau, span_of(o)); });
            return py::make_tuple(to_numpy(std::move(r.indices)), r.walked);
        },
        py::arg("X"), py::arg("n"), py::arg("tau"), py::arg("order"),
        "DEITA-style filter on unit rows; returns (kept indices, samples walked).");
}

}  // namespace tritondiv::bind
