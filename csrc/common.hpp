// Shared plain-C++17 building blocks of the tritondiv core: non-owning spans, a CSR view,
// the thread-count setting and the rule for exceptions inside OpenMP regions.
// No Python headers here or anywhere under csrc/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#if TRITONDIV_HAVE_OPENMP
#include <omp.h>
#endif

namespace tritondiv {

// A non-owning view of `size` contiguous elements (std::span is C++20).
template <class T>
struct Span {
    T* data = nullptr;
    std::size_t size = 0;

    Span() = default;
    Span(T* d, std::size_t n) : data(d), size(n) {}
    template <class U>
    Span(std::vector<U>& v) : data(v.data()), size(v.size()) {}
    template <class U>
    Span(const std::vector<U>& v) : data(v.data()), size(v.size()) {}

    T& operator[](std::size_t i) const { return data[i]; }
    T* begin() const { return data; }
    T* end() const { return data + size; }
    bool empty() const { return size == 0; }
};

// A read-only sample -> items matrix in CSR form: row i holds
// values[offsets[i] .. offsets[i+1]). `offsets` has rows + 1 entries.
template <class V>
struct CsrView {
    Span<const std::int64_t> offsets;
    Span<const V> values;

    std::size_t rows() const { return offsets.size == 0 ? 0 : offsets.size - 1; }
    std::int64_t begin(std::size_t i) const { return offsets[i]; }
    std::int64_t end(std::size_t i) const { return offsets[i + 1]; }
    std::int64_t row_size(std::size_t i) const { return offsets[i + 1] - offsets[i]; }
};

// An owned CSR result (offsets: rows + 1 entries).
template <class V>
struct Csr {
    std::vector<std::int64_t> offsets;
    std::vector<V> values;
};

// Validates a CSR view: offsets non-empty, start at 0, non-decreasing, end at values.size.
// Throws std::invalid_argument naming `what` and the first bad position.
template <class V>
void check_csr(const CsrView<V>& csr, const char* what) {
    if (csr.offsets.size == 0)
        throw std::invalid_argument(std::string(what) +
                                    ": offsets must have rows + 1 >= 1 entries (got 0)");
    if (csr.offsets[0] != 0)
        throw std::invalid_argument(std::string(what) + ": offsets[0] must be 0 (got " +
                                    std::to_string(csr.offsets[0]) + ")");
    for (std::size_t i = 1; i < csr.offsets.size; ++i) {
        if (csr.offsets[i] < csr.offsets[i - 1])
            throw std::invalid_argument(std::string(what) + ": offsets must be non-decreasing (offsets[" +
                                        std::to_string(i) + "] = " + std::to_string(csr.offsets[i]) +
                                        " < offsets[" + std::to_string(i - 1) + "] = " +
                                        std::to_string(csr.offsets[i - 1]) + ")");
    }
    const auto last = csr.offsets[csr.offsets.size - 1];
    if (last != static_cast<std::int64_t>(csr.values.size))
        throw std::invalid_argument(std::string(what) + ": offsets[-1] = " + std::to_string(last) +
                                    " but there are " + std::to_string(csr.values.size) + " values");
}

// ---- checked arithmetic on sizes and offsets --------------------------------------------
// Offsets and sizes arrive from Python as arbitrary int64 values. A range test written as
// `start + len > n` overflows (undefined behaviour; in practice it wraps negative and
// passes) for start near 2^63, so every such test goes through these helpers, which never
// overflow.

// True when [start, start + len) lies inside [0, n) (len >= 0; n >= 0).
inline bool range_inside(std::int64_t start, std::int64_t len, std::int64_t n) {
    return start >= 0 && len >= 0 && len <= n && start <= n - len;
}

// a + b, or throws std::invalid_argument naming `what` when it does not fit in int64.
inline std::int64_t checked_add(std::int64_t a, std::int64_t b, const char* what) {
    std::int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        throw std::invalid_argument(std::string(what) + ": " + std::to_string(a) + " + " +
                                    std::to_string(b) + " overflows int64");
    return r;
}

// a * b for sizes (a, b >= 0), or throws std::invalid_argument naming `what` when it does
// not fit in int64.
inline std::int64_t checked_mul(std::int64_t a, std::int64_t b, const char* what) {
    std::int64_t r;
    if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r))
        throw std::invalid_argument(std::string(what) + ": size " + std::to_string(a) + " x " +
                                    std::to_string(b) + " is negative or overflows int64");
    return r;
}

// ---- threads ---------------------------------------------------------------------------

// True when the core was built with OpenMP.
bool have_openmp();
// Threads the parallel kernels use (1 without OpenMP).
int num_threads();
// The largest thread count set_num_threads accepts: max(256, 4 x hardware threads).
// Oversubscribing a few times can make sense (threads waiting on memory); tens of thousands
// of OpenMP threads exhaust the stacks' address space and crash, so they are refused.
int max_threads();
// Sets the thread count for all later calls; n <= 0 restores the default (all cores).
// Throws std::invalid_argument when n > max_threads().
void set_num_threads(long long n);
// Lowers the OpenMP default (e.g. a huge OMP_NUM_THREADS) to max_threads(); called once
// when the module loads.
void clamp_default_threads();

// Captures the first exception thrown inside an OpenMP region so it can be rethrown after
// the region ends (an exception must never cross an OpenMP region boundary: the runtime
// calls std::terminate). The rule of the core: buffers are allocated before a region
// (std::bad_alloc then reaches Python as MemoryError); whatever may still throw inside a
// region (a growing per-thread buffer) runs under ExceptionCapture::run and is rethrown
// after the region.
class ExceptionCapture {
   public:
    template <class F>
    void run(F&& f) noexcept {
        try {
            f();
        } catch (...) {
            std::lock_guard<std::mutex> lock(mu_);
            if (!ptr_) ptr_ = std::current_exception();
        }
    }
    bool failed() const { return static_cast<bool>(ptr_); }
    void rethrow() const {
        if (ptr_) std::rethrow_exception(ptr_);
    }

   private:
    std::exception_ptr ptr_;
    std::mutex mu_;
};

}  // namespace tritondiv
