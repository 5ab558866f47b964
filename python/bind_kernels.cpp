// Binding of the per-block reductions of the CPU dissimilarity kernels (tritondiv.kernels).
// Only binds: checks arrays, then calls the core through call_core (bind_common.hpp).
// The running state arrays (vals/ids/best) are updated in place.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "bind_common.hpp"
#include "topk_kernels.hpp"

namespace tritondiv::bind {

namespace {

using kernels::Block;
using kernels::TopkState;

template <class T>
T* mutable_ptr(py::array_t<T, py::array::c_style>& a, const char* name) {
    if (!a.writeable())
        throw py::value_error(std::string(name) + ": array must be writeable");
    return a.mutable_data();
}

Block block_of(const py::array_t<float, py::array::c_style>& g) {
    return Block{g.data(), static_cast<std::int64_t>(g.shape(0)),
                 static_cast<std::int64_t>(g.shape(1))};
}

// Optional bias vector: None -> nullptr, else float32[len].
const float* bias_of(const py::object& obj, const char* name, std::int64_t len,
                     py::array_t<float, py::array::c_style>& keep) {
    if (obj.is_none()) return nullptr;
    keep = checked_array<float>(obj, name, 1);
    if (keep.shape(0) != len)
        throw py::value_error(std::string(name) + ": expected length " + std::to_string(len) +
                              ", got " + std::to_string(keep.shape(0)));
    return keep.data();
}

TopkState state_of(py::array_t<float, py::array::c_style>& vals,
                   py::array_t<std::int64_t, py::array::c_style>& ids) {
    if (vals.shape(0) != ids.shape(0) || vals.shape(1) != ids.shape(1))
        throw py::value_error("topk state: vals and ids must have the same shape (n, k)");
    return TopkState{mutable_ptr(vals, "vals"), mutable_ptr(ids, "ids"),
                     static_cast<std::int64_t>(vals.shape(0)),
                     static_cast<std::int64_t>(vals.shape(1))};
}

void topk_merge(const py::object& g_obj, std::int64_t row0, std::int64_t col0, float alpha,
                const py::object& col_bias_obj, const py::object& row_bias_obj,
                bool exclude_self, bool transposed_too, const py::object& vals_obj,
                const py::object& ids_obj) {
    auto g = checked_array<float>(g_obj, "g", 2);
    auto vals = checked_array<float>(vals_obj, "vals", 2);
    auto ids = checked_array<std::int64_t>(ids_obj, "ids", 2);
    py::array_t<float, py::array::c_style> keep_c, keep_r;
    const Block b = block_of(g);
    const float* cb = bias_of(col_bias_obj, "col_bias", b.cols, keep_c);
    const float* rb = bias_of(row_bias_obj, "row_bias", b.rows, keep_r);
    TopkState st = state_of(vals, ids);
    call_core("topk_merge_block", [&] {
        kernels::topk_merge_block(b, row0, col0, alpha, cb, rb, exclude_self, transposed_too, st);
    });
}

}  // namespace

void bind_kernels(py::module_& m) {
    m.def("topk_merge_block", &topk_merge, py::arg("g"), py::arg("row0"), py::arg("col0"),
          py::arg("alpha"), py::arg("col_bias"), py::arg("row_bias"), py::arg("exclude_self"),
          py::arg("transposed_too"), py::arg("vals"), py::arg("ids"),
          "Fold a float32 block g into the running top-k heaps (vals float32[n,k], ids "
          "int64[n,k], updated in place): rows row0.. get candidates col0.. scored "
          "alpha*g + col_bias[j]; with transposed_too (off-diagonal block of X·Xᵀ) rows "
          "col0.. also get candidates row0.. scored alpha*g + row_bias[i].");
    m.def(
        "topk_finalize",
        [](const py::object& vals_obj, const py::object& ids_obj) {
            auto vals = checked_array<float>(vals_obj, "vals", 2);
            auto ids = checked_array<std::int64_t>(ids_obj, "ids", 2);
            TopkState st = state_of(vals, ids);
            call_core("topk_finalize", [&] { kernels::topk_finalize(st); });
        },
        py::arg("vals"), py::arg("ids"),
        "Sort each row of the top-k state best-first (ties: smaller id first); empty slots "
        "get id -1.");
    m.def(
        "argmax_merge_rows",
        [](const py::object& g_obj, std::int64_t row0, std::int64_t col0, float alpha,
           const py::object& bias_obj, const py::object& best_val_obj,
           const py::object& best_id_obj) {
            auto g = checked_array<float>(g_obj, "g", 2);
            auto bv = checked_array<float>(best_val_obj, "best_val", 1);
            auto bi = checked_array<std::int64_t>(best_id_obj, "best_id", 1);
            if (bv.shape(0) != bi.shape(0))
                throw py::value_error("best_val and best_id must have the same length");
            py::array_t<float, py::array::c_style> keep;
            const Block b = block_of(g);
            const float* bias = bias_of(bias_obj, "col_bias", b.cols, keep);
            float* pv = mutable_ptr(bv, "best_val");
            std::int64_t* pi = mutable_ptr(bi, "best_id");
            const auto n = static_cast<std::int64_t>(bv.shape(0));
            call_core("argmax_merge_rows",
                      [&] { kernels::argmax_merge_rows(b, row0, col0, alpha, bias, pv, pi, n); });
        },
        py::arg("g"), py::arg("row0"), py::arg("col0"), py::arg("alpha"), py::arg("col_bias"),
        py::arg("best_val"), py::arg("best_id"),
        "Fold a float32 block into a running row argmax (best_val float32[n], best_id "
        "int64[n], in place); score = alpha*g + col_bias[j]; ties keep the smaller id.");
}

}  // namespace tritondiv::bind
