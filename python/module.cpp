// tritondiv._core: the pybind11 binding layer. Each area registers its functions from its
// own bind_*.cpp file; this file holds the module and the threading switches.
#include <pybind11/pybind11.h>

#include <stdexcept>

#include "common.hpp"

namespace py = pybind11;

namespace tritondiv::bind {
void bind_token_stats(py::module_& m);
void bind_select(py::module_& m);
void bind_kernels(py::module_& m);
}  // namespace tritondiv::bind

PYBIND11_MODULE(_core, m) {
    m.doc() = "tritondiv C++ core (internal; use the tritondiv package API)";
    m.attr("openmp") = py::bool_(tritondiv::have_openmp());
    m.def("num_threads", &tritondiv::num_threads,
          "Threads the C++ kernels use (1 when built without OpenMP).");
    tritondiv::clamp_default_threads();
    m.def("max_threads", &tritondiv::max_threads,
          "The largest thread count set_num_threads accepts: max(256, 4 x hardware threads).");
    m.def(
        "set_num_threads",
        [](long long n) {
            try {
                tritondiv::set_num_threads(n);
            } catch (const std::invalid_argument& e) {
                throw py::value_error(e.what());
            }
        },
        py::arg("n"),
        "Set the threads of the C++ kernels; n <= 0 restores the default (all cores); "
        "ValueError above max_threads().");
    tritondiv::bind::bind_token_stats(m);
    tritondiv::bind::bind_select(m);
    tritondiv::bind::bind_kernels(m);
}
