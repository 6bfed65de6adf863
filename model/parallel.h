// parallel_chunks: at::parallel_for's contract (split [begin, end) into contiguous chunks of at least `grain`
// items, one per intra-op thread, run serially inside a parallel region or with one thread), for rlvr's own
// kernels. at::parallel_for is a header template whose OpenMP region only exists in translation units compiled
// with -fopenmp; ours are not (the shared PCH), so in them it silently ran every chunk on the calling thread.
// parallel.cpp is compiled with -fopenmp and linked against LibTorch's own libgomp, so the chunks run on the same
// thread pool (and thread count, `run.threads`) as ATen's ops. No LibTorch headers here.
#pragma once
#include <cstdint>

namespace rlvr::model {

namespace detail {
void parallel_chunks(int64_t begin, int64_t end, int64_t grain, void (*call)(const void*, int64_t, int64_t),
                     const void* fn);
}

// fn(chunk_begin, chunk_end) for chunks covering [begin, end); the first exception thrown by a chunk is rethrown.
template <class F>
void parallel_chunks(int64_t begin, int64_t end, int64_t grain, const F& fn) {
  detail::parallel_chunks(
      begin, end, grain, [](const void* f, int64_t b, int64_t e) { (*static_cast<const F*>(f))(b, e); }, &fn);
}

// The number of threads parallel_chunks would use for a range of `n` items at this grain (1 where OpenMP is
// absent from the build).
int64_t parallel_chunks_threads(int64_t n, int64_t grain);

}  // namespace rlvr::model
