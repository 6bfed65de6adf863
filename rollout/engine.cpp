// RolloutEngine::generate: the scheduler. Slots [0, n_active) always hold the active sequences (a finished one is
// replaced by the last active slot, so decode reads the cache as views); pending samples are admitted into free
// slots, their prompts prefilled in right-padded batches (once per prompt; siblings copy the prompt KV), and every
// active sequence advances by one token per decode forward. Legend: B = rows, T = tokens per row, V = vocab.
#include "rollout/engine.h"

#include <ATen/ATen.h>
#include <torch/types.h>

#include <algorithm>
#include <deque>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <map>
#include <optional>
#include <unordered_set>

#include "common/error.h"

namespace rlvr::rollout {

const char* to_string(FinishReason f) {
  switch (f) {
    case FinishReason::stop: return "stop";
    case FinishReason::length: return "length";
    case FinishReason::aborted: return "aborted";
  }
  return "?";
}

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Decode allocates and frees the same multi-MB activations every step. glibc returns such blocks to the kernel
// (mmap above the dynamic threshold, heap trimming) and every step then pays page faults and page zeroing: 1.5x the
// CPU time of a decode step on the bench model. Keep them in the process instead (process-wide, once).
void keep_freed_memory() {
#if defined(__GLIBC__)
  static const bool done = [] {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);            // glibc's maximum: blocks up to 32 MiB come from the heap
    mallopt(M_TRIM_THRESHOLD, 1 << 30);             // and the heap is not trimmed below 1 GiB of free top space
    return true;
  }();
  (void)done;
#endif
}

}  // namespace

RolloutEngine::RolloutEngine(std::shared_ptr<model::CausalLM> model, RolloutOptions opts)
    : model_(std::move(model)), opts_(std::move(opts)) {
  RLVR_CHECK(model_ != nullptr, "RolloutEngine: null model");
  RLVR_CHECK(opts_.max_batch_seqs >= 1, "rollout max_batch_seqs must be >= 1, got {}", opts_.max_batch_seqs);
  RLVR_CHECK(opts_.max_cached_tokens >= 0, "rollout max_cached_tokens must be >= 0 (0 = auto), got {}",
             opts_.max_cached_tokens);
  RLVR_CHECK(opts_.max_prefill_tokens >= 1, "rollout max_prefill_tokens must be >= 1, got {}",
             opts_.max_prefill_tokens);
  if (opts_.tune_malloc) keep_freed_memory();
}

void RolloutEngine::ensure_cache(int64_t slots, int64_t slot_len) {
  if (cache_ && cache_->shape().slots >= slots && cache_->shape().max_len >= slot_len) {
    cache_->clear_all();
    return;
  }
  cache_.reset();  // free the old one before allocating the new one
  const auto& a = model_->args();
  KvCacheShape shape;
  shape.num_layers = a.num_hidden_layers;
  shape.kv_heads = a.num_key_value_heads;
  shape.head_dim = a.head_dim > 0 ? a.head_dim : a.hidden_size / a.num_attention_heads;
  shape.slots = slots;
  shape.max_len = slot_len;
  auto params = model_->parameters();
  const auto dtype = params.empty() ? at::kFloat : params.front().scalar_type();
  cache_ = std::make_unique<SlotKvCache>(shape, model_->device(), dtype);
}

// One generate() call: sequences, the pending queue, the slot table.
struct RolloutEngine::Run {
  RolloutEngine& eng;
  const std::vector<std::vector<int64_t>>& prompts;
  const SamplingParams& sp;
  const int64_t G;
  const uint64_t call;
  SlotKvCache& cache;
  const GenerateControl& ctl;
  std::vector<Completion> out;              // [N * G]
  std::vector<int64_t> limit;               // per completion: most tokens it may have
  std::vector<char> done;                   // per completion
  std::deque<int64_t> pending;              // completion indices not yet admitted, in order
  std::vector<int64_t> active;              // slot -> completion index
  std::vector<int64_t> pending_of_prompt;   // samples of each prompt not yet admitted
  std::map<int64_t, at::Tensor> last_logits;  // prompt -> [V] logits at its last position (while samples pend)
  std::unordered_set<int64_t> eos;
  size_t stop_window = 0;                   // tokens decoded for the stop-string check
  // Thinking budget: per completion 0 = before the span, 1 = inside it, 2 = after it; tokens still to force.
  std::vector<int8_t> think_state;
  std::vector<std::deque<int64_t>> forced;
  size_t think_window = 0;                  // tokens decoded for the open/close tag check

  int64_t prompt_of(int64_t c) const { return c / G; }
  int64_t plen(int64_t c) const { return static_cast<int64_t>(prompts[prompt_of(c)].size()); }

  bool tail_has(const std::vector<int64_t>& ids, const std::string& tag) const {
    const size_t n = std::min(ids.size(), think_window);
    return eng.opts_.detokenize(std::vector<int64_t>(ids.end() - n, ids.end())).find(tag) != std::string::npos;
  }

  // Budget forcing: counts the tokens inside the think span, notices its open and close tags, and queues the close
  // tokens when the budget is spent.
  void track_think(int64_t c) {
    auto& comp = out[c];
    auto& st = think_state[c];
    if (st == 0 && tail_has(comp.ids, ctl.think.open)) {
      st = 1;
      comp.think_tokens = 0;
      return;
    }
    if (st != 1) return;
    if (!forced[c].empty()) return;  // the close tokens are on their way
    ++comp.think_tokens;
    if (tail_has(comp.ids, ctl.think.close)) {
      st = 2;
    } else if (comp.think_tokens >= ctl.think.max_tokens) {
      forced[c].assign(ctl.think.close_ids.begin(), ctl.think.close_ids.end());
      comp.think_forced = true;
      st = 2;
    }
  }

  // Appends a sampled token to completion c and decides whether it has finished.
  void push(int64_t c, int64_t tok, float lp, float conf) {
    auto& comp = out[c];
    comp.ids.push_back(tok);
    comp.logprobs.push_back(lp);
    if (ctl.confidence_top_k > 0) comp.confidence.push_back(conf);
    const bool more_forced = !forced[c].empty();  // this token was forced and more of the close tokens follow
    if (ctl.think.max_tokens > 0) track_think(c);
    if (more_forced) {
      // the rest of the forced close tokens come next: EOS, stop and caller checks resume after them
      if (static_cast<int64_t>(comp.ids.size()) >= limit[c]) {
        comp.finish = FinishReason::length;
        done[c] = 1;
      }
      return;
    }
    if (ctl.stop_if && ctl.stop_if(comp)) {
      comp.finish = FinishReason::aborted;
      done[c] = 1;
      ++eng.stats_.aborted;
      return;
    }
    if (!sp.ignore_eos && eos.count(tok)) {
      comp.finish = FinishReason::stop;
      done[c] = 1;
    } else if (!sp.stop.empty() && hits_stop(comp.ids)) {
      comp.finish = FinishReason::stop;
      done[c] = 1;
    } else if (static_cast<int64_t>(comp.ids.size()) >= limit[c]) {
      comp.finish = FinishReason::length;
      done[c] = 1;
    }
  }

  // Any stop string in the decoded tail? Earlier text never held one (the completion would have stopped), so a
  // match in the tail is new.
  bool hits_stop(const std::vector<int64_t>& ids) const {
    const size_t n = std::min(ids.size(), stop_window);
    const std::string text = eng.opts_.detokenize(std::vector<int64_t>(ids.end() - n, ids.end()));
    for (const auto& s : sp.stop) {
      if (text.find(s) != std::string::npos) return true;
    }
    return false;
  }

  // Samples one token for each completion in `cs` from logits [B, V] (row b for cs[b]).
  void sample_rows(const std::vector<int64_t>& cs, const at::Tensor& logits) {
    auto t0 = Clock::now();
    const int64_t B = static_cast<int64_t>(cs.size());
    auto u = at::empty({B}, at::kDouble);  // [B] CPU
    auto* up = u.mutable_data_ptr<double>();
    for (int64_t b = 0; b < B; ++b) {
      const int64_t c = cs[b];
      up[b] = counter_uniform(eng.opts_.seed, call, eng.opts_.prompt_index_base + out[c].prompt_index, out[c].sample_index, out[c].ids.size());
    }
    auto r = sample(logits, sp, u);
    auto tok = r.tokens.cpu();        // [B] int64 (a device sync on CUDA: EOS decides the schedule)
    auto lp = r.logprobs.cpu();       // [B] fp32
    // Forced tokens (thinking budget) replace the draw; their log-prob is read from the same distribution.
    std::vector<int64_t> forced_rows;
    for (int64_t b = 0; b < B; ++b) {
      if (forced[cs[b]].empty()) continue;
      forced_rows.push_back(b);
      tok.mutable_data_ptr<int64_t>()[b] = forced[cs[b]].front();
      forced[cs[b]].pop_front();
    }
    at::Tensor z;  // [B, V] fp32 logits at the sampling temperature, when confidence or forced log-probs need them
    if (ctl.confidence_top_k > 0 || !forced_rows.empty()) {
      z = logits.to(at::kFloat);
      if (sp.temperature > 0 && sp.temperature != 1.0) z = z / sp.temperature;
    }
    at::Tensor conf;  // [B] fp32
    if (ctl.confidence_top_k > 0) {
      const int64_t k = std::min<int64_t>(ctl.confidence_top_k, z.size(1));
      auto top = std::get<0>(at::topk(z, k, -1, /*largest=*/true, /*sorted=*/false));  // [B, k]
      conf = (at::logsumexp(z, -1) - top.mean(-1)).cpu();  // -(1/k) sum_j log p(j) = lse - mean of top logits
    }
    if (!forced_rows.empty()) {
      auto lse = at::logsumexp(z, -1).cpu();  // [B]
      auto zc = z.cpu();
      for (int64_t b : forced_rows) {
        const int64_t t = tok.const_data_ptr<int64_t>()[b];
        lp.mutable_data_ptr<float>()[b] = zc[b][t].item<float>() - lse[b].item<float>();
      }
    }
    const int64_t* tp = tok.const_data_ptr<int64_t>();
    const float* lpp = lp.const_data_ptr<float>();
    const float* cp = conf.defined() ? conf.const_data_ptr<float>() : nullptr;
    for (int64_t b = 0; b < B; ++b) push(cs[b], tp[b], lpp[b], cp ? cp[b] : 0.0f);
    eng.stats_.generated_tokens += B;
    eng.stats_.sample_s += seconds_since(t0);
  }

  // Prefills prompts `ps` (longest first) whose primary samples sit in slots first .. first + ps.size() - 1; keeps
  // their last-position logits. Splits into forwards of at most max_prefill_tokens padded tokens.
  void prefill(const std::vector<int64_t>& ps, int64_t first) {
    auto t0 = Clock::now();
    const auto dev = eng.model_->device();
    size_t i = 0;
    while (i < ps.size()) {
      // ps is sorted longest first: grow the chunk while rows x longest stays within the budget and padding
      // stays under a third of the chunk (always at least one prompt).
      size_t j = i + 1;
      const int64_t T = static_cast<int64_t>(prompts[ps[i]].size());
      int64_t real = T;
      while (j < ps.size()) {
        const int64_t rows = static_cast<int64_t>(j + 1 - i), r2 = real + static_cast<int64_t>(prompts[ps[j]].size());
        if (rows * T > eng.opts_.max_prefill_tokens || 3 * (rows * T - r2) > rows * T) break;
        real = r2;
        ++j;
      }
      const int64_t B = static_cast<int64_t>(j - i);
      auto tokens = at::zeros({B, T}, at::kLong);                      // [B, T] right-padded with id 0
      auto* tp = tokens.mutable_data_ptr<int64_t>();
      std::vector<int64_t> rows(B), lens(B);
      for (int64_t b = 0; b < B; ++b) {
        const auto& p = prompts[ps[i + b]];
        std::copy(p.begin(), p.end(), tp + b * T);
        rows[b] = first + static_cast<int64_t>(i) + b;
        lens[b] = static_cast<int64_t>(p.size());
        eng.stats_.prompt_tokens += lens[b];
      }
      auto positions = at::arange(T, at::kLong).unsqueeze(0).expand({B, T}).contiguous();  // [B, T]
      model::ForwardOptions fo;
      fo.logit_positions = at::tensor(lens, at::kLong).sub_(1).to(dev);  // [B]: each prompt's last position
      cache.begin_forward(rows, T, lens);
      auto logits = eng.model_->forward(tokens.to(dev), positions.to(dev), at::Tensor(), &cache, fo);  // [B, 1, V]
      cache.end_forward();
      for (int64_t b = 0; b < B; ++b) last_logits[ps[i + b]] = logits[b][0];  // [V]
      ++eng.stats_.prefill_forwards;
      i = j;
    }
    eng.stats_.prefill_s += seconds_since(t0);
  }

  // Fills free slots with pending samples: prefill prompts without a live sibling, copy the prompt KV to the
  // others, sample everyone's first token from the prompt's last logits.
  void admit() {
    const int64_t n_slots = cache.shape().slots;
    const int64_t take = std::min<int64_t>(n_slots - static_cast<int64_t>(active.size()), pending.size());
    if (take <= 0) return;
    std::vector<int64_t> fresh(pending.begin(), pending.begin() + take);
    pending.erase(pending.begin(), pending.begin() + take);
    // A live sibling (same prompt, already in a slot) whose prompt KV we can copy, when its logits are kept.
    std::map<int64_t, int64_t> sibling_slot;
    for (int64_t s = 0; s < static_cast<int64_t>(active.size()); ++s) {
      const int64_t p = prompt_of(active[s]);
      if (last_logits.count(p) && !sibling_slot.count(p)) sibling_slot[p] = s;
    }
    std::vector<int64_t> to_prefill;
    for (int64_t c : fresh) {
      const int64_t p = prompt_of(c);
      if (!sibling_slot.count(p) && std::find(to_prefill.begin(), to_prefill.end(), p) == to_prefill.end()) {
        to_prefill.push_back(p);
      }
    }
    // Longest first, so that each prefill chunk pads to similar lengths.
    std::stable_sort(to_prefill.begin(), to_prefill.end(),
                     [&](int64_t x, int64_t y) { return prompts[x].size() > prompts[y].size(); });
    // Slots: the primaries of prefilled prompts first (a contiguous run for the prefill forward), then the rest.
    const int64_t base = static_cast<int64_t>(active.size());
    std::vector<int64_t> slot_of(take, -1);
    std::map<int64_t, int64_t> primary_slot;
    int64_t next = base + static_cast<int64_t>(to_prefill.size());
    for (int64_t k = 0; k < take; ++k) {
      const int64_t p = prompt_of(fresh[k]);
      auto it = std::find(to_prefill.begin(), to_prefill.end(), p);
      if (it != to_prefill.end() && !primary_slot.count(p)) {
        primary_slot[p] = base + (it - to_prefill.begin());
        slot_of[k] = primary_slot[p];
      } else {
        slot_of[k] = next++;
      }
    }
    active.resize(base + take);
    for (int64_t k = 0; k < take; ++k) active[slot_of[k]] = fresh[k];
    if (!to_prefill.empty()) prefill(to_prefill, base);
    for (int64_t k = 0; k < take; ++k) {
      const int64_t p = prompt_of(fresh[k]);
      if (primary_slot.count(p) && primary_slot[p] == slot_of[k]) continue;
      const int64_t src = primary_slot.count(p) ? primary_slot[p] : sibling_slot.at(p);
      cache.copy_prefix(src, slot_of[k], plen(fresh[k]));
    }
    // First tokens, in slot order.
    std::vector<int64_t> cs(active.begin() + base, active.end());
    std::vector<at::Tensor> rows;
    rows.reserve(cs.size());
    for (int64_t c : cs) rows.push_back(last_logits.at(prompt_of(c)));
    sample_rows(cs, at::stack(rows));  // [take, V]
    for (int64_t c : fresh) {
      if (--pending_of_prompt[prompt_of(c)] == 0) last_logits.erase(prompt_of(c));
    }
  }

  // Frees the slots of finished sequences, moving the last active ones into the holes.
  void retire() {
    int64_t n = static_cast<int64_t>(active.size());
    int64_t i = 0;
    std::vector<std::pair<int64_t, int64_t>> moves;  // sources descend from the end, holes ascend: disjoint
    while (true) {
      while (i < n && !done[active[i]]) ++i;
      while (n > 0 && done[active[n - 1]]) {
        cache.clear(n - 1);
        --n;
      }
      if (i >= n) break;
      moves.emplace_back(n - 1, i);  // the hole at i takes the last live slot
      active[i] = active[n - 1];
      --n;
      ++i;
    }
    cache.move_slots(moves);
    active.resize(n);
  }

  // One forward over every active sequence (slots 0 .. B-1, one new token each), then one token each.
  void decode_step() {
    auto t0 = Clock::now();
    const int64_t B = static_cast<int64_t>(active.size());
    auto tokens = at::empty({B, 1}, at::kLong);     // [B, 1]
    auto positions = at::empty({B, 1}, at::kLong);  // [B, 1]
    auto* tp = tokens.mutable_data_ptr<int64_t>();
    auto* pp = positions.mutable_data_ptr<int64_t>();
    std::vector<int64_t> rows(B), ones(B, 1);
    for (int64_t s = 0; s < B; ++s) {
      const auto& comp = out[active[s]];
      tp[s] = comp.ids.back();
      pp[s] = cache.length(s);  // == prompt length + ids.size() - 1: the token's real position
      rows[s] = s;
    }
    const auto dev = eng.model_->device();
    cache.begin_forward(rows, 1, ones);
    auto logits = eng.model_->forward(tokens.to(dev), positions.to(dev), at::Tensor(), &cache);  // [B, 1, V]
    cache.end_forward();
    ++eng.stats_.decode_forwards;
    eng.stats_.max_active = std::max(eng.stats_.max_active, B);
    sample_rows(active, logits.select(1, 0));  // [B, V]
    eng.stats_.decode_s += seconds_since(t0);
  }
};

std::vector<Completion> RolloutEngine::generate(const std::vector<std::vector<int64_t>>& prompts,
                                                const SamplingParams& params, int group_size) {
  return generate(prompts, params, group_size, GenerateControl{});
}

std::vector<Completion> RolloutEngine::generate(const std::vector<std::vector<int64_t>>& prompts,
                                                const SamplingParams& params, int group_size,
                                                const GenerateControl& ctl) {
  auto t0 = Clock::now();
  validate(params);
  RLVR_CHECK(group_size >= 1, "group_size must be >= 1, got {}", group_size);
  RLVR_CHECK(params.stop.empty() || opts_.detokenize, "stop strings need a detokenizer (RolloutOptions::detokenize)");
  RLVR_CHECK(ctl.sample_offset >= 0, "sample_offset must be >= 0, got {}", ctl.sample_offset);
  RLVR_CHECK(ctl.confidence_top_k >= 0, "confidence_top_k must be >= 0 (0 = off), got {}", ctl.confidence_top_k);
  RLVR_CHECK(ctl.think.max_tokens >= 0, "the thinking budget must be >= 0 tokens (0 = off), got {}", ctl.think.max_tokens);
  RLVR_CHECK(ctl.think.max_tokens == 0 || (opts_.detokenize && !ctl.think.close_ids.empty() && !ctl.think.open.empty() &&
                                           !ctl.think.close.empty()),
             "a thinking budget needs a detokenizer, open/close tags and the close tokens");
  stats_ = RolloutStats{};
  if (prompts.empty()) return {};
  const auto& a = model_->args();
  int64_t longest = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    RLVR_CHECK(!prompts[i].empty(), "prompt {} is empty: generation needs at least one prompt token", i);
    for (int64_t id : prompts[i]) {
      RLVR_CHECK(id >= 0 && id < a.vocab_size, "prompt {} holds token id {} outside the vocabulary [0, {})", i, id,
                 a.vocab_size);
    }
    longest = std::max<int64_t>(longest, prompts[i].size());
  }
  // KV geometry: every slot fits the longest prompt plus max_new_tokens, unless the budget or the model's
  // position range says less; then completions stop at the capacity (finish = length).
  const int64_t N = static_cast<int64_t>(prompts.size()), G = group_size;
  int64_t slot_len = std::min<int64_t>(longest + params.max_new_tokens, a.max_position_embeddings);
  int64_t slots = std::min<int64_t>(opts_.max_batch_seqs, N * G);
  if (opts_.max_cached_tokens > 0) {
    slots = std::min<int64_t>(slots, opts_.max_cached_tokens / slot_len);
    if (slots == 0) {
      slots = 1;
      slot_len = opts_.max_cached_tokens;
    }
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    const int64_t L = static_cast<int64_t>(prompts[i].size());
    RLVR_CHECK(L < slot_len,
               "prompt {} has {} tokens: no room for a new token in a KV-cache slot of {} tokens (max_cached_tokens {}, "
               "max_position_embeddings {})",
               i, L, slot_len, opts_.max_cached_tokens, a.max_position_embeddings);
  }

  at::NoGradGuard no_grad;
  std::optional<model::PackedWeightsScope> packed;  // weights can change between calls (training): pack per call
  if (opts_.pack_weights) packed.emplace(*model_);
  ensure_cache(slots, slot_len);
  stats_.slots = slots;
  stats_.slot_len = slot_len;
  const uint64_t call = ctl.call ? *ctl.call : calls_++;
  Run run{*this, prompts, params, G, call, *cache_, ctl, {}, {}, {}, {}, {}, {}, {}, {}, 0, {}, {}, 0};
  run.out.resize(N * G);
  run.limit.resize(N * G);
  run.done.assign(N * G, 0);
  run.pending_of_prompt.assign(N, G);
  for (int64_t c = 0; c < N * G; ++c) {
    run.out[c].prompt_index = c / G;
    run.out[c].sample_index = ctl.sample_offset + c % G;
    run.limit[c] = std::min<int64_t>(params.max_new_tokens, slot_len - run.plen(c));
    run.pending.push_back(c);
  }
  run.eos.insert(params.eos_ids.begin(), params.eos_ids.end());
  size_t longest_stop = 0;
  for (const auto& s : params.stop) longest_stop = std::max(longest_stop, s.size());
  run.stop_window = longest_stop + 8;  // every token decodes to >= 1 byte; slack for special/empty ones
  run.think_state.assign(N * G, ctl.think.open_in_prompt ? 1 : 0);
  run.forced.resize(N * G);
  if (ctl.think.max_tokens > 0 && ctl.think.open_in_prompt) {
    for (auto& c : run.out) c.think_tokens = 0;
  }
  run.think_window = std::max(ctl.think.open.size(), ctl.think.close.size()) + 8;
  while (!run.pending.empty() || !run.active.empty()) {
    run.admit();
    run.retire();
    if (run.active.empty()) continue;
    run.decode_step();
    run.retire();
    if (opts_.on_progress)
      opts_.on_progress(std::count(run.done.begin(), run.done.end(), 1), stats_.generated_tokens);
  }
  if (opts_.detokenize) {
    for (auto& c : run.out) c.text = opts_.detokenize(c.ids);
  }
  stats_.total_s = seconds_since(t0);
  return std::move(run.out);
}

}  // namespace rlvr::rollout
