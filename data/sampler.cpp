// Deterministic epoch order, rank slices and the resumable cursor (see sampler.h).
#include "data/sampler.h"

#include <numeric>

#include "common/error.h"
#include "data/rng.h"

namespace rlvr::data {

nlohmann::json cursor_to_json(const Cursor& c) { return {{"epoch", c.epoch}, {"offset", c.offset}}; }

Cursor cursor_from_json(const nlohmann::json& j) {
  RLVR_CHECK(j.is_object() && j.contains("epoch") && j.contains("offset") && j["epoch"].is_number_integer() &&
                 j["offset"].is_number_integer(),
             "data cursor must be {{\"epoch\": int, \"offset\": int}}, got {}", j.dump());
  Cursor c{j["epoch"].get<int64_t>(), j["offset"].get<int64_t>()};
  RLVR_CHECK(c.epoch >= 0 && c.offset >= 0, "data cursor has negative fields: epoch {} offset {}", c.epoch, c.offset);
  return c;
}

std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch, bool shuffle) {
  RLVR_CHECK(n >= 0, "dataset size must be >= 0, got {}", n);
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  if (shuffle) {
    Rng rng(combine_seed({seed, 0x5eed0d47a0ULL, static_cast<uint64_t>(epoch)}));
    rng.shuffle(order);
  }
  return order;
}

std::pair<int64_t, int64_t> rank_slice(int64_t global_batch, int rank, int world) {
  RLVR_CHECK(world >= 1 && rank >= 0 && rank < world, "rank {} out of range for world size {}", rank, world);
  RLVR_CHECK(global_batch >= 0, "global batch must be >= 0, got {}", global_batch);
  return {global_batch * rank / world, global_batch * (rank + 1) / world};
}

PromptSampler::PromptSampler(int64_t dataset_size, uint64_t seed, bool shuffle)
    : n_(dataset_size), seed_(seed), shuffle_(shuffle) {
  RLVR_CHECK(n_ > 0, "cannot sample from an empty dataset");
}

const std::vector<int64_t>& PromptSampler::order(int64_t epoch) {
  if (epoch != cached_epoch_) {
    cached_ = epoch_order(n_, seed_, epoch, shuffle_);
    cached_epoch_ = epoch;
  }
  return cached_;
}

std::vector<int64_t> PromptSampler::next_global_batch(int64_t global_batch) {
  RLVR_CHECK(global_batch >= 1, "global batch must be >= 1, got {}", global_batch);
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(global_batch));
  while (static_cast<int64_t>(out.size()) < global_batch) {
    const auto& ord = order(cursor_.epoch);
    int64_t take = std::min(global_batch - static_cast<int64_t>(out.size()), n_ - cursor_.offset);
    out.insert(out.end(), ord.begin() + cursor_.offset, ord.begin() + cursor_.offset + take);
    cursor_.offset += take;
    if (cursor_.offset == n_) cursor_ = {cursor_.epoch + 1, 0};
  }
  return out;
}

std::vector<int64_t> PromptSampler::next_batch(int64_t global_batch, int rank, int world) {
  auto [b, e] = rank_slice(global_batch, rank, world);
  auto all = next_global_batch(global_batch);
  return std::vector<int64_t>(all.begin() + b, all.begin() + e);
}

void PromptSampler::set_cursor(const Cursor& c) {
  RLVR_CHECK(c.epoch >= 0 && c.offset >= 0 && c.offset < n_,
             "data cursor (epoch {}, offset {}) does not fit a dataset of {} prompts (resumed with other data?)",
             c.epoch, c.offset, n_);
  cursor_ = c;
}

}  // namespace rlvr::data
