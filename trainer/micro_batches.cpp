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

}  // namespace rlvr::trainer
