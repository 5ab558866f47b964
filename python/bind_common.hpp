// Helpers of the binding layer: turn numpy arrays into core spans after checking dtype,
// ndim, shape and contiguity. Nothing here converts silently: a wrong array raises
// TypeError/ValueError saying what to pass.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <new>
#include <stdexcept>
#include <string>
#include <utility>

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

// True when `arr` holds elements of exactly `dt` (native byte order). An equivalence test,
// not an identity test: an unpickled or otherwise rebuilt array carries its own dtype
// object, equal to but not the same object as numpy's builtin one.
inline bool same_dtype(const py::array& arr, const py::dtype& dt) {
    return py::detail::npy_api::get().PyArray_EquivTypes_(dt.ptr(), arr.dtype().ptr()) != 0;
}

// Checks that `obj` is a C-contiguous numpy array of dtype T with `ndim` dimensions and
// returns it without copying. `name` is used in the error messages.
template <class T>
py::array_t<T, py::array::c_style> checked_array(const py::handle& obj, const char* name, int ndim) {
    if (!py::isinstance<py::array>(obj)) {
        throw py::type_error(std::string(name) + ": expected a numpy array of dtype " + dtype_name<T>() +
                             ", got " + std::string(py::str(py::type::of(obj).attr("__name__"))));
    }
    auto arr = py::reinterpret_borrow<py::array>(obj);
    if (!same_dtype(arr, py::dtype::of<T>())) {
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

// Runs `f`, a call into the C++ core, with the GIL released, and maps the core's errors.
// This is the one place the bindings release the GIL. Releasing is safe because
//  * every array the core reads or writes was checked first and is borrowed from a
//    py::array held by the calling binding's locals (which keep a reference to the
//    caller's object until call_core returns), so its memory stays alive and in place;
//  * the core touches no Python object and includes no Python header (csrc/), so it needs
//    no GIL; results are turned into Python objects only after the GIL is back.
// Errors: std::invalid_argument -> ValueError (its message); std::bad_alloc and
// std::length_error (a size too large to allocate) -> MemoryError naming `what`. Anything
// else goes through pybind11's standard translation.
template <class F>
auto call_core(const char* what, F&& f) -> decltype(f()) {
    try {
        py::gil_scoped_release release;
        return std::forward<F>(f)();
    } catch (const std::invalid_argument& e) {
        throw py::value_error(e.what());
    } catch (const std::bad_alloc&) {
        PyErr_SetString(PyExc_MemoryError,
                        (std::string(what) + ": out of memory (the input asks for more than can "
                                             "be allocated)").c_str());
        throw py::error_already_set();
    } catch (const std::length_error& e) {
        PyErr_SetString(PyExc_MemoryError, (std::string(what) + ": size too large (" + e.what() + ")").c_str());
        throw py::error_already_set();
    }
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
