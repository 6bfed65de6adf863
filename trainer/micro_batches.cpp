#include "trainer/micro_batches.h"

#include <algorithm>

namespace rlvr::trainer {

std::vector<std::vector<size_t>> plan_micro_batches(const std::vector<int64_t>& lengths, const std::vector<size_t>& rows,
                                                    int64_t micro_batch_size, int64_t max_tokens) {
  std::vector<std::vector<size_t>> out;
  if (max_tokens <= 0) {
    const size_t mb = static_cast<size_t>(std::max<int64_t>(1, micro_batch_size));
    for (size_t i = 0; i < rows.size(); i += mb)
      out.emplace_back(rows.begin() + i, rows.begin() + std::min(rows.size(), i + mb));
    return out;
  }
  std::vector<size_t> order(rows);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return lengths[a] > lengths[b]; });
  for (size_t i : order) {
    // Sorted longest first: the first row of a micro-batch sets its padded length.
    if (!out.empty() && static_cast<int64_t>(out.back().size() + 1) * lengths[out.back().front()] <= max_tokens)
      out.back().push_back(i);
    else
      out.push_back({i});
  }
  return out;
}

PaddingCount count_padding(const std::vector<int64_t>& lengths, const std::vector<std::vector<size_t>>& plan) {
  PaddingCount c;
  for (const auto& mb : plan) {
    int64_t longest = 0;
    for (size_t i : mb) longest = std::max(longest, lengths[i]), c.real += static_cast<double>(lengths[i]);
    c.padded += static_cast<double>(longest) * static_cast<double>(mb.size());
  }
  return c;
}

std::vector<int> balance_ranks(const std::vector<int64_t>& lengths, const std::vector<size_t>& bounds, int world) {
  std::vector<int> owner(lengths.size(), 0);
  for (size_t m = 0; m + 1 < bounds.size(); ++m) {
    std::vector<size_t> order;
    for (size_t i = bounds[m]; i < bounds[m + 1]; ++i) order.push_back(i);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return lengths[a] > lengths[b]; });
    std::vector<int64_t> load(static_cast<size_t>(world), 0);
    for (size_t i : order) {
      const auto r = std::min_element(load.begin(), load.end()) - load.begin();
      load[static_cast<size_t>(r)] += lengths[i];
      owner[i] = static_cast<int>(r);
    }
  }
  return owner;
}

std::vector<std::vector<size_t>> rows_of_rank(const std::vector<int>& owner, const std::vector<size_t>& bounds, int rank) {
  std::vector<std::vector<size_t>> out;
  for (size_t m = 0; m + 1 < bounds.size(); ++m) {
    out.emplace_back();
    for (size_t i = bounds[m]; i < bounds[m + 1]; ++i)
      if (owner[i] == rank) out.back().push_back(i);
  }
  return out;
}

std::vector<std::vector<size_t>> balance_rows(const std::vector<int64_t>& lengths, const std::vector<size_t>& bounds,
                                              int world, int rank) {
  return rows_of_rank(balance_ranks(lengths, bounds, world), bounds, rank);
}

double rank_imbalance(const std::vector<int64_t>& lengths, const std::vector<size_t>& bounds, const std::vector<int>& owner,
                      int world) {
  double worst = 1.0;
  for (size_t m = 0; m + 1 < bounds.size(); ++m) {
    std::vector<double> load(static_cast<size_t>(world), 0.0);
    double total = 0;
    for (size_t i = bounds[m]; i < bounds[m + 1]; ++i) load[static_cast<size_t>(owner[i])] += lengths[i], total += lengths[i];
    if (total > 0) worst = std::max(worst, *std::max_element(load.begin(), load.end()) / (total / world));
  }
  return worst;
}

}  // namespace rlvr::trainer
