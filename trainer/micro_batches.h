// Micro-batch planning for the update: which rows (completions) go through one forward/backward together.
// Free of LibTorch, so the padding it causes can be measured on real length distributions (bench/padding).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace rlvr::trainer {

// rows: indices into `lengths` (each row's prompt + response tokens, the padded size pack_batch gives a row).
// max_tokens <= 0: consecutive groups of micro_batch_size rows, in the given order.
// max_tokens > 0: rows sorted by length (longest first, ties in the given order) and packed while
// rows x the longest row of the micro-batch fits max_tokens; a row longer than the budget goes alone.
std::vector<std::vector<size_t>> plan_micro_batches(const std::vector<int64_t>& lengths, const std::vector<size_t>& rows,
                                                    int64_t micro_batch_size, int64_t max_tokens);

// Padded tokens (rows x longest row, summed over micro-batches) and real tokens of a plan.
struct PaddingCount {
  double padded = 0, real = 0;
  double ratio() const { return real > 0 ? padded / real - 1.0 : 0.0; }  // 0 = no padding
};
PaddingCount count_padding(const std::vector<int64_t>& lengths, const std::vector<std::vector<size_t>>& plan);

// Rank balancing of the update (verl's balance_batch): the global batch's rows (lengths in global order) are cut
// into mini-batches at `bounds` (mini-batch m = rows [bounds[m], bounds[m + 1])); within each mini-batch the rows
// are dealt longest first (ties: earlier row) to the rank with the fewest tokens of that mini-batch so far
// (ties: lower rank). Returns, per mini-batch, the rows `rank` trains on, in global order. world 1: every row.
// balance_ranks gives every row's rank; balance_rows the rows of one rank, per mini-batch.
std::vector<int> balance_ranks(const std::vector<int64_t>& lengths, const std::vector<size_t>& bounds, int world);
std::vector<std::vector<size_t>> balance_rows(const std::vector<int64_t>& lengths, const std::vector<size_t>& bounds,
                                              int world, int rank);
std::vector<std::vector<size_t>> rows_of_rank(const std::vector<int>& owner, const std::vector<size_t>& bounds, int rank);
// Tokens per rank of each mini-batch (max over mini-batches of max / mean); 1 = balanced. `owner[i]` = rank of row i.
double rank_imbalance(const std::vector<int64_t>& lengths, const std::vector<size_t>& bounds, const std::vector<int>& owner,
                      int world);

}  // namespace rlvr::trainer
