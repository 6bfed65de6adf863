// Micro-batch planning (trainer/micro_batches.h) on hand-made lengths.
#include <catch2/catch.hpp>

#include "trainer/micro_batches.h"

using rlvr::trainer::count_padding;
using rlvr::trainer::plan_micro_batches;
using Plan = std::vector<std::vector<size_t>>;

TEST_CASE("micro-batches: by count in order, by token budget sorted longest first", "[trainer][batching]") {
  const std::vector<int64_t> len{10, 30, 20, 25, 5};  // 90 real tokens
  const std::vector<size_t> rows{0, 1, 2, 3, 4};
  // Two rows each, in order: padded 2 x 30 + 2 x 25 + 5 = 115.
  auto by_count = plan_micro_batches(len, rows, 2, 0);
  CHECK(by_count == Plan{{0, 1}, {2, 3}, {4}});
  CHECK(count_padding(len, by_count).padded == 115);
  CHECK(count_padding(len, by_count).real == 90);
  CHECK(count_padding(len, by_count).ratio() == Approx(115.0 / 90 - 1));
  // Budget 60 over 30, 25, 20, 10, 5: {30, 25} (2 x 30 = 60), then 20 opens a batch that takes 10 (2 x 20) and
  // 5 (3 x 20 = 60). A budget bounds memory; it does not minimise padding (120 here).
  auto b60 = plan_micro_batches(len, rows, 2, 60);
  CHECK(b60 == Plan{{1, 3}, {2, 0, 4}});
  CHECK(count_padding(len, b60).padded == 120);
  // Budget 20: 30 and 25 exceed it and go alone, 20 fills it alone, then {10, 5} (2 x 10 = 20): padded 95.
  auto b20 = plan_micro_batches(len, rows, 2, 20);
  CHECK(b20 == Plan{{1}, {3}, {2}, {0, 4}});
  CHECK(count_padding(len, b20).padded == 95);
  // Ties keep the given order; a subset of rows is planned on its own.
  CHECK(plan_micro_batches({7, 7, 7}, {0, 1, 2}, 8, 14) == Plan{{0, 1}, {2}});
  CHECK(plan_micro_batches(len, {4, 2}, 1, 0) == Plan{{4}, {2}});
  CHECK(plan_micro_batches(len, {}, 4, 0).empty());
  CHECK(plan_micro_batches(len, {}, 4, 100).empty());
}
