#include "common/host_memory.h"

#include <cstdlib>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace rlvr {

void tune_host_allocator() {
#if defined(__GLIBC__)
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") != nullptr) return;  // the user's setting, applied by glibc
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
#endif
}

}  // namespace rlvr
