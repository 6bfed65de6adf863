// See parallel.h. The chunking is ATen's (ParallelOpenMP.h): no num_threads clause (GOMP's pool bug that ATen
// works around), each thread takes chunk `tid` of ceil(n / threads) items.
#include "model/parallel.h"

#include <algorithm>
#include <atomic>
#include <exception>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace rlvr::model {

int64_t parallel_chunks_threads(int64_t n, int64_t grain) {
#ifdef _OPENMP
  if (n <= 1 || n <= grain || omp_in_parallel()) return 1;
  const int64_t by_grain = grain > 0 ? (n + grain - 1) / grain : n;
  return std::max<int64_t>(1, std::min<int64_t>(omp_get_max_threads(), by_grain));
#else
  (void)n;
  (void)grain;
  return 1;
#endif
}

namespace detail {

void parallel_chunks(int64_t begin, int64_t end, int64_t grain, void (*call)(const void*, int64_t, int64_t),
                     const void* fn) {
  if (begin >= end) return;
  const int64_t n = end - begin;
  if (parallel_chunks_threads(n, grain) <= 1) {
    call(fn, begin, end);
    return;
  }
#ifdef _OPENMP
  std::atomic_flag failed = ATOMIC_FLAG_INIT;
  std::exception_ptr error;
#pragma omp parallel
  {
    int64_t threads = omp_get_num_threads();
    if (grain > 0) threads = std::min<int64_t>(threads, (n + grain - 1) / grain);
    const int64_t chunk = (n + threads - 1) / threads;
    const int64_t b = begin + omp_get_thread_num() * chunk;
    if (b < end) {
      try {
        call(fn, b, std::min(end, b + chunk));
      } catch (...) {
        if (!failed.test_and_set()) error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);
#endif
}

}  // namespace detail
}  // namespace rlvr::model
