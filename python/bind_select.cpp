#include <pybind11/pybind11.h>

#include "bind_common.hpp"

namespace tritondiv::bind {
void bind_select(py::module_& m) {}
}  // namespace tritondiv::bind
