#include <algorithm>
#include <string>

#include "common.hpp"

namespace tritondiv {

namespace {
int g_default_threads() {
#if TRITONDIV_HAVE_OPENMP
    return omp_get_num_procs();
#else
    return 1;
#endif
}
}  // namespace

bool have_openmp() { return TRITONDIV_HAVE_OPENMP != 0; }

int max_threads() { return std::max(256, 4 * g_default_threads()); }

int num_threads() {
#if TRITONDIV_HAVE_OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void set_num_threads(long long n) {
    const int bound = max_threads();
    if (n > bound)
        throw std::invalid_argument("set_num_threads: " + std::to_string(n) +
                                    " threads exceeds the limit of " + std::to_string(bound) +
                                    " (max(256, 4 x " + std::to_string(g_default_threads()) +
                                    " hardware threads))");
#if TRITONDIV_HAVE_OPENMP
    omp_set_num_threads(n > 0 ? static_cast<int>(n) : g_default_threads());
#endif
}

void clamp_default_threads() {
#if TRITONDIV_HAVE_OPENMP
    if (omp_get_max_threads() > max_threads()) omp_set_num_threads(max_threads());
#endif
}

}  // namespace tritondiv
