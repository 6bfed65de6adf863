// Data order for training: a deterministic permutation per (seed, epoch), global batches of prompts cut
// from it in order (rolling over into the next epoch), each rank's contiguous share of a global batch,
// and a cursor (epoch, offset) saved in checkpoints for resume. It does not own the records.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace rlvr::data {

// Position in the data stream: `offset` prompts of epoch `epoch`'s order have been consumed (globally,
// over all ranks). Saved in trainer_state/ and restored on resume.
struct Cursor {
  int64_t epoch = 0;
  int64_t offset = 0;
  bool operator==(const Cursor&) const = default;
};
nlohmann::json cursor_to_json(const Cursor& c);    // {"epoch": e, "offset": o}
Cursor cursor_from_json(const nlohmann::json& j);  // Error on a missing field or a negative value

// The global order of epoch `epoch`: a permutation of [0, n) that depends only on (n, seed, epoch) when
// shuffling, or the identity when not. Never on the number of ranks.
std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch, bool shuffle);

// Rank `rank`'s share of a global batch of `global_batch` prompts: the half-open range [begin, end) of
// positions in the batch. Contiguous, disjoint across ranks, covering the batch; sizes differ by at most
// one when world does not divide global_batch (earlier ranks get the smaller share).
std::pair<int64_t, int64_t> rank_slice(int64_t global_batch, int rank, int world);

// Yields prompt indices. Every rank holds an identical sampler and calls next_batch with the same
// global_batch in lockstep; each gets its own slice while the cursor advances by the whole global batch,
// so rank r of W sees exactly its part of the single-rank order.
//
//   PromptSampler s(dataset.size(), cfg.run.seed, cfg.data.shuffle);
//   s.set_cursor(saved);                              // resume
//   auto mine = s.next_batch(prompts_per_step, rank, world);
//   save(s.cursor());
class PromptSampler {
 public:
  PromptSampler(int64_t dataset_size, uint64_t seed, bool shuffle = true);

  // The next global batch: `global_batch` indices taken in order, continuing into the next epoch's
  // order when the current one runs out (so every prompt is seen once per epoch, and a batch may
  // straddle two epochs). Advances the cursor.
  std::vector<int64_t> next_global_batch(int64_t global_batch);
  // This rank's contiguous share of the next global batch (rank_slice); advances the cursor by the
  // whole global batch.
  std::vector<int64_t> next_batch(int64_t global_batch, int rank, int world);

  Cursor cursor() const { return cursor_; }
  // Error when offset >= dataset size (a cursor from a different dataset).
  void set_cursor(const Cursor& c);
  int64_t size() const { return n_; }
  const std::vector<int64_t>& order(int64_t epoch);  // cached epoch_order

 private:
  int64_t n_;
  uint64_t seed_;
  bool shuffle_;
  Cursor cursor_;
  int64_t cached_epoch_ = -1;
  std::vector<int64_t> cached_;
};

}  // namespace rlvr::data
