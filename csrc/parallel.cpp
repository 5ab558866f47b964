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

int num_threads() {
#if TRITONDIV_HAVE_OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void set_num_threads(int n) {
#if TRITONDIV_HAVE_OPENMP
    omp_set_num_threads(n > 0 ? n : g_default_threads());
#else
    (void)n;
#endif
}

}  // namespace tritondiv
