// Helpers of the binding layer: turn numpy arrays into core spans after checking dtype,
// ndim, shape and contiguity. Nothing here converts silently: a wrong array raises
// TypeError/ValueError saying what to pass.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "common.hpp"

namespace tritondiv::bind {

namespace py = pybind11;

template <class T>
const char* dtype_name();
template <> inline const char* dtype_name<std::int32_t>() { return "int32"; }
template <> inline const char* dtype_name<std::int64_t>() { return "int64"; }
template <> inline const char* dtype_name<std::uint32_t>() { return "uint32"; }
template <> inline const char* dtype_name<std::uint64_t>() { return "uint64"; }
template <> inline const char* dtype_name<float>() { return "float32"; }
template <> inline const char* dtype_name<double>() { return "float64"; }
template <> inline const char* dtype_name<std::uint16_t>() { return "float16 (as uint16 bits)"; }
template <> inline const char* dtype_name<std::uint8_t>() { return "uint8"; }

// Checks that `obj` is a C-contiguous numpy array of dtype T with `ndim` dimensions and
// returns it without copying. `name` is used in the error messages.
template <class T>
py::array_t<T, py::array::c_style> checked_array(const py::handle& obj, const char* name, int ndim) {
    if (!py::isinstance<py::array>(obj)) {
        throw py::type_error(std::string(name) + ": expected a numpy array of dtype " + dtype_name<T>() +
                             ", got " + std::string(py::str(py::type::of(obj).attr("__name__"))));
    }
    auto arr = py::reinterpret_borrow<py::array>(obj);
    if (!arr.dtype().is(py::dtype::of<T>())) {
        throw py::type_error(std::string(name) + ": expected dtype " + dtype_name<T>() + ", got " +
                             std::string(py::str(arr.dtype())) + " (convert with .astype(np." +
                             dtype_name<T>() + "))");
    }
    if (arr.ndim() != ndim) {
        throw py::value_error(std::string(name) + ": expected a " + std::to_string(ndim) +
                              "-D array, got " + std::to_string(arr.ndim()) + "-D");
    }
    if (!(arr.flags() & py::array::c_style)) {
        throw py::value_error(std::string(name) +
                              ": array must be C-contiguous (pass np.ascontiguousarray(...))");
    }
    return py::reinterpret_borrow<py::array_t<T, py::array::c_style>>(arr);
}

template <class T>
Span<const T> span_of(const py::array_t<T, py::array::c_style>& a) {
    return Span<const T>(a.data(), static_cast<std::size_t>(a.size()));
}

// Returns a 1-D numpy array that takes ownership of a std::vector without copying.
template <class T>
py::array_t<T> to_numpy(std::vector<T>&& v) {
    auto* heap = new std::vector<T>(std::move(v));
    py::capsule owner(heap, [](void* p) { delete static_cast<std::vector<T>*>(p); });
    return py::array_t<T>({static_cast<py::ssize_t>(heap->size())}, {sizeof(T)}, heap->data(), owner);
}

// A CSR view from (offsets: int64[rows+1], values: V[nnz]) numpy arrays, validated.
template <class V>
CsrView<V> csr_view(const py::array_t<std::int64_t, py::array::c_style>& offsets,
                    const py::array_t<V, py::array::c_style>& values, const char* what) {
    CsrView<V> v{span_of(offsets), span_of(values)};
    try {
        check_csr(v, what);
    } catch (const std::invalid_argument& e) {
        throw py::value_error(e.what());
    }
    return v;
}

}  // namespace tritondiv::bind
