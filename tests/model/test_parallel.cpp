// parallel_chunks: rlvr's kernels split their rows across LibTorch's intra-op threads (at::parallel_for is serial
// in translation units built without -fopenmp, as ours are).
#include <ATen/Parallel.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "model/parallel.h"

using rlvr::model::parallel_chunks;
using rlvr::model::parallel_chunks_threads;

namespace {

struct Record {
  std::vector<int> hits;
  std::set<std::thread::id> threads;
  int chunks = 0;
};

Record run(int threads, int64_t n, int64_t grain) {
  const int before = at::get_num_threads();
  at::set_num_threads(threads);
  Record r;
  r.hits.assign(n, 0);
  std::mutex m;
  parallel_chunks(0, n, grain, [&](int64_t b, int64_t e) {
    std::lock_guard<std::mutex> lock(m);
    r.threads.insert(std::this_thread::get_id());
    ++r.chunks;
    for (int64_t i = b; i < e; ++i) ++r.hits[i];
  });
  at::set_num_threads(before);
  return r;
}

}  // namespace

TEST_CASE("parallel_chunks runs its chunks on the intra-op threads, each item once", "[model][parallel]") {
  auto two = run(2, 1000, 1);
  CHECK(two.threads.size() == 2);  // was 1 with at::parallel_for in a TU without -fopenmp
  CHECK(two.chunks == 2);
  CHECK(std::count(two.hits.begin(), two.hits.end(), 1) == 1000);
  auto one = run(1, 1000, 1);
  CHECK(one.threads.size() == 1);
  CHECK(one.chunks == 1);
  CHECK(std::count(one.hits.begin(), one.hits.end(), 1) == 1000);
  // The grain bounds the split, as at::parallel_for's: 1000 items at grain 600 make 2 chunks, at grain 1000 one.
  auto coarse = run(2, 1000, 600);
  CHECK(coarse.chunks == 2);
  CHECK(std::count(coarse.hits.begin(), coarse.hits.end(), 1) == 1000);
  CHECK(run(2, 1000, 1000).chunks == 1);
  const int before = at::get_num_threads();
  at::set_num_threads(2);
  CHECK(parallel_chunks_threads(1000, 1) == 2);
  CHECK(parallel_chunks_threads(1000, 1000) == 1);
  CHECK(parallel_chunks_threads(1, 1) == 1);
  at::set_num_threads(1);
  CHECK(parallel_chunks_threads(1000, 1) == 1);
  at::set_num_threads(before);
}

TEST_CASE("parallel_chunks rethrows a chunk's exception on the calling thread", "[model][parallel]") {
  const int before = at::get_num_threads();
  at::set_num_threads(2);
  CHECK_THROWS_WITH(parallel_chunks(0, 100, 1,
                                    [](int64_t b, int64_t) {
                                      if (b > 0) throw std::runtime_error("second chunk failed");
                                    }),
                    "second chunk failed");
  parallel_chunks(5, 5, 1, [](int64_t, int64_t) { throw std::runtime_error("an empty range runs nothing"); });
  at::set_num_threads(before);
}
