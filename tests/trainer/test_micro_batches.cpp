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

TEST_CASE("balance_rows: each mini-batch's rows dealt to the ranks by tokens, longest first", "[trainer][batching]") {
  // One mini-batch of 6 rows, 2 ranks. Longest first: 10 -> rank 0; 9 -> rank 1; 8 -> rank 1 (9 < 10);
  // then the 1s go to rank 0 (10 < 17): rank 0 = {0, 3, 4, 5} (13 tokens), rank 1 = {1, 2} (17 tokens).
  const std::vector<int64_t> len{10, 9, 8, 1, 1, 1};
  CHECK(rlvr::trainer::balance_rows(len, {0, 6}, 2, 0) == std::vector<std::vector<size_t>>{{0, 3, 4, 5}});
  CHECK(rlvr::trainer::balance_rows(len, {0, 6}, 2, 1) == std::vector<std::vector<size_t>>{{1, 2}});
  CHECK(rlvr::trainer::balance_ranks(len, {0, 6}, 2) == std::vector<int>{0, 1, 1, 0, 0, 0});
  // The rows as they arrived (rank 0 had rows 0-2 = 27 tokens, rank 1 rows 3-5 = 3): max / mean = 27 / 15.
  CHECK(rlvr::trainer::rank_imbalance(len, {0, 6}, {0, 0, 0, 1, 1, 1}, 2) == Approx(27.0 / 15));
  CHECK(rlvr::trainer::rank_imbalance(len, {0, 6}, {0, 1, 1, 0, 0, 0}, 2) == Approx(17.0 / 15));
  // Two mini-batches are balanced separately and rows never leave their mini-batch; one rank keeps every row.
  const std::vector<int64_t> l2{5, 5, 5, 5, 1, 2, 3, 4};
  auto r0 = rlvr::trainer::balance_rows(l2, {0, 4, 8}, 2, 0), r1 = rlvr::trainer::balance_rows(l2, {0, 4, 8}, 2, 1);
  REQUIRE(r0.size() == 2);
  CHECK(r0[0] == std::vector<size_t>{0, 2});
  CHECK(r1[0] == std::vector<size_t>{1, 3});
  CHECK(r0[1] == std::vector<size_t>{4, 7});  // 4 -> r0, 3 -> r1, 2 -> r1 (3 < 4), 1 -> r0 (4 < 5): 5 and 5
  CHECK(r1[1] == std::vector<size_t>{5, 6});
  CHECK(rlvr::trainer::balance_rows(l2, {0, 4, 8}, 1, 0) == std::vector<std::vector<size_t>>{{0, 1, 2, 3}, {4, 5, 6, 7}});
}
