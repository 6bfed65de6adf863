// KV cache and engine tests on the model fixtures (tests/reference/make_model.py): decode logits equal the full
// forward at every position, greedy equals transformers' greedy, continuous batching equals static batching, the
// returned log-probs equal the training forward's token_logprobs, EOS / stop strings / length, errors.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/types.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "common/error.h"
#include "model/causal_lm.h"
#include "rollout/engine.h"
#include "rollout/kv_cache.h"

namespace fs = std::filesystem;
using rlvr::model::CausalLM;
using rlvr::rollout::Completion;
using rlvr::rollout::FinishReason;
using rlvr::rollout::RolloutEngine;
using rlvr::rollout::RolloutOptions;
using rlvr::rollout::SamplingParams;

namespace {

const std::vector<std::string> kFixtures = {"qwen2_tied", "qwen2_untied", "qwen2_gqa4",           "llama3",
                                            "llama_bias", "qwen3",        "qwen2_untied_sharded", "qwen2_tied_bf16"};

fs::path fixture_dir(const std::string& name) {
  auto dir = fs::path(RLVR_BINARY_DIR) / "fixtures" / "model" / name;
  if (!fs::exists(dir / "ref.json")) {
    FAIL("missing model fixture " << dir.string() << "; run: python tests/reference/make_model.py --out "
                                  << RLVR_BINARY_DIR << "/fixtures");
  }
  return dir;
}

std::shared_ptr<CausalLM> load(const std::string& name) {
  return CausalLM::from_pretrained(fixture_dir(name) / "hf", at::Device(at::kCPU), at::kFloat);
}

struct GreedyRef {
  std::vector<int64_t> prompt, output;
};

std::vector<GreedyRef> greedy_refs(const std::string& name) {
  std::ifstream f(fixture_dir(name) / "ref.json");
  auto j = nlohmann::json::parse(f);
  std::vector<GreedyRef> out;
  for (const auto& g : j.at("greedy")) {
    out.push_back({g.at("prompt").get<std::vector<int64_t>>(), g.at("output").get<std::vector<int64_t>>()});
  }
  return out;
}

std::vector<std::vector<int64_t>> random_prompts(const std::vector<int64_t>& lens, int64_t vocab, uint64_t seed) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(seed);
  std::vector<std::vector<int64_t>> out;
  for (int64_t L : lens) {
    auto t = at::randint(3, vocab, {L}, g, at::kLong);
    out.emplace_back(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + L);
  }
  return out;
}

at::Tensor row_tensor(const std::vector<int64_t>& ids) { return at::tensor(ids, at::kLong).unsqueeze(0); }  // [1, L]

SamplingParams greedy_params(int32_t n) {
  SamplingParams p;
  p.temperature = 0.0;
  p.max_new_tokens = n;
  return p;
}

// max |a - b| / (1 + |b|): 1e-5 is allclose(atol = 1e-5, rtol = 1e-5); the fixtures' logits reach ~10.
double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  return ((a - b).abs() / (b.abs() + 1.0)).max().item<double>();
}

// The decode-vs-full check for one model and one slot layout.
void check_decode_matches_full(const std::string& name, const std::vector<int64_t>& slots) {
  auto model = load(name);
  const auto& a = model->args();
  at::NoGradGuard ng;
  const std::vector<int64_t> lens = {3, 6, 9};
  const int64_t steps = 7, B = 3;
  auto prompts = random_prompts(lens, a.vocab_size, 17);
  auto conts = random_prompts({steps, steps, steps}, a.vocab_size, 18);
  rlvr::rollout::KvCacheShape shape{a.num_hidden_layers, a.num_key_value_heads,
                                    a.head_dim > 0 ? a.head_dim : a.hidden_size / a.num_attention_heads, 4, 20};
  rlvr::rollout::SlotKvCache cache(shape, at::Device(at::kCPU), at::kFloat);
  // Reference: each full sequence alone, no cache.
  std::vector<at::Tensor> full;  // [L + steps, V]
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int64_t> seq = prompts[b];
    seq.insert(seq.end(), conts[b].begin(), conts[b].end());
    full.push_back(model->forward(row_tensor(seq), at::Tensor(), at::Tensor())[0]);
  }
  // Prefill, right-padded to T = 9.
  const int64_t T = 9;
  auto tokens = at::zeros({B, T}, at::kLong);
  for (int64_t b = 0; b < B; ++b) tokens[b].narrow(0, 0, lens[b]).copy_(at::tensor(prompts[b], at::kLong));
  auto positions = at::arange(T, at::kLong).unsqueeze(0).expand({B, T}).contiguous();
  cache.begin_forward(slots, T, lens);
  auto logits = model->forward(tokens, positions, at::Tensor(), &cache);  // [B, T, V]
  cache.end_forward();
  double worst = 0.0;
  for (int64_t b = 0; b < B; ++b) {
    worst = std::max(worst, max_abs_diff(logits[b].narrow(0, 0, lens[b]), full[b].narrow(0, 0, lens[b])));
    CHECK(cache.length(slots[b]) == lens[b]);
  }
  // Decode the given continuations one token at a time, rows at different lengths.
  for (int64_t t = 0; t < steps; ++t) {
    auto tok = at::empty({B, 1}, at::kLong), pos = at::empty({B, 1}, at::kLong);
    for (int64_t b = 0; b < B; ++b) {
      tok[b][0] = conts[b][t];
      pos[b][0] = lens[b] + t;
    }
    cache.begin_forward(slots, 1, {1, 1, 1});
    auto step = model->forward(tok, pos, at::Tensor(), &cache);  // [B, 1, V]
    cache.end_forward();
    for (int64_t b = 0; b < B; ++b) worst = std::max(worst, max_abs_diff(step[b][0], full[b][lens[b] + t]));
  }
  INFO(name << ": max |decode - full| / (1 + |full|) = " << worst);
  CHECK(worst < 1e-5);
}

std::vector<Completion> run(const std::shared_ptr<CausalLM>& model, const std::vector<std::vector<int64_t>>& prompts,
                            const SamplingParams& p, int G, int32_t max_batch_seqs, uint64_t seed = 0,
                            int64_t max_cached_tokens = 0) {
  RolloutOptions o;
  o.max_batch_seqs = max_batch_seqs;
  o.seed = seed;
  o.max_cached_tokens = max_cached_tokens;
  RolloutEngine eng(model, o);
  return eng.generate(prompts, p, G);
}

std::string bracket_detok(const std::vector<int64_t>& ids) {
  std::string s;
  for (int64_t id : ids) s += "[" + std::to_string(id) + "]";
  return s;
}

}  // namespace

TEST_CASE("KV cache: decode logits equal the full forward at every position", "[rollout][kv]") {
  for (const std::string name : {"qwen2_tied", "qwen2_gqa4", "llama3", "qwen3"}) {
    SECTION(name + " contiguous slots") { check_decode_matches_full(name, {0, 1, 2}); }
    SECTION(name + " scattered slots") { check_decode_matches_full(name, {3, 0, 2}); }
  }
}

TEST_CASE("KV cache: bookkeeping, masks, copies", "[rollout][kv]") {
  rlvr::rollout::SlotKvCache cache({1, 1, 2, 3, 6}, at::Device(at::kCPU), at::kFloat);
  // Row 0 (slot 1) gets 2 real tokens of T = 3, row 1 (slot 2) all 3.
  cache.begin_forward({1, 2}, 3, {2, 3});
  auto k = at::arange(12, at::kFloat).view({2, 1, 3, 2});  // [B, Hkv, T, D]
  auto in = cache.append(0, k, k * 10);
  CHECK(in.k.sizes() == at::IntArrayRef({2, 1, 3, 2}));
  CHECK(at::equal(in.k, k));
  CHECK(in.mask.sizes() == at::IntArrayRef({2, 1, 3, 3}));
  cache.end_forward();
  CHECK(cache.length(1) == 2);
  CHECK(cache.length(2) == 3);
  CHECK(cache.length(0) == 0);
  // Ragged decode: slot 1 writes at position 2 (over the padding), slot 2 at 3; S = 4.
  cache.begin_forward({1, 2}, 1, {1, 1});
  auto k2 = at::full({2, 1, 1, 2}, -1.0f);
  auto in2 = cache.append(0, k2, k2);
  cache.end_forward();
  CHECK(in2.k.size(2) == 4);
  CHECK(in2.k[0][0][2][0].item<float>() == -1.0f);   // slot 1 position 2 overwritten
  CHECK(in2.k[1][0][2][0].item<float>() == 10.0f);   // slot 2 position 2 kept (row 1, t = 2, d = 0)
  CHECK(in2.k[1][0][3][1].item<float>() == -1.0f);
  // mask row 0 (length 2 + 1 new): keys 0..2 visible, key 3 not; row 1 all 4.
  auto m = in2.mask.to(at::kLong).view({2, 4});
  CHECK(at::equal(m, at::tensor({1, 1, 1, 0, 1, 1, 1, 1}, at::kLong).view({2, 4})));
  // Fan-out copy and compaction move.
  cache.copy_prefix(2, 0, 2);
  CHECK(cache.length(0) == 2);
  cache.move_slot(2, 1);
  CHECK(cache.length(1) == 4);
  CHECK(cache.length(2) == 0);
  // Overflow is an error naming the lengths.
  CHECK_THROWS_WITH(cache.begin_forward({1}, 3, {3}), Catch::Contains("holds 4 tokens") && Catch::Contains("6"));
}

TEST_CASE("KV cache: moves in one batch equal the moves one by one", "[rollout][kv]") {
  // 2 layers, 2 kv heads, head dim 3, 6 slots of 6 positions; slots of lengths 1..5 (slot 0 empty).
  auto fill = [](rlvr::rollout::SlotKvCache& c) {
    for (int64_t s = 1; s < 6; ++s) {
      c.begin_forward({s}, s, {s});
      for (int64_t l = 0; l < 2; ++l) {
        auto k = at::arange(2 * s * 3, at::kFloat).view({1, 2, s, 3}) + 100 * s + 1000 * l;  // [1, Hkv, T, D]
        c.append(l, k, -k);
      }
      c.end_forward();
    }
  };
  rlvr::rollout::SlotKvCache one({2, 2, 3, 6, 6}, at::Device(at::kCPU), at::kFloat);
  rlvr::rollout::SlotKvCache all({2, 2, 3, 6, 6}, at::Device(at::kCPU), at::kFloat);
  fill(one);
  fill(all);
  // Compaction after slots 0 and 2 finished: 5 -> 0, 4 -> 2 (sources longer and shorter than each other).
  const std::vector<std::pair<int64_t, int64_t>> moves{{5, 0}, {4, 2}};
  for (auto [src, dst] : moves) one.move_slot(src, dst);
  all.move_slots(moves);
  for (int64_t s = 0; s < 6; ++s) CHECK(one.length(s) == all.length(s));
  CHECK(all.length(0) == 5);
  CHECK(all.length(2) == 4);
  CHECK(all.length(5) == 0);
  // What a forward reads (every slot's real positions, per layer) is the same; slot 0 holds slot 5's keys.
  std::vector<int64_t> live{0, 1, 2, 3}, none(4, 0);
  for (auto* c : {&one, &all}) c->begin_forward(live, 1, none);
  for (int64_t l = 0; l < 2; ++l) {
    auto a = one.append(l, at::zeros({4, 2, 1, 3}), at::zeros({4, 2, 1, 3}));
    auto b = all.append(l, at::zeros({4, 2, 1, 3}), at::zeros({4, 2, 1, 3}));
    for (int64_t r = 0; r < 4; ++r) {
      const int64_t n = one.length(live[r]);
      CHECK(at::equal(a.k[r].narrow(1, 0, n), b.k[r].narrow(1, 0, n)));
      CHECK(at::equal(a.v[r].narrow(1, 0, n), b.v[r].narrow(1, 0, n)));
    }
    CHECK(b.k[0][1][4][2].item<float>() == 2 * 5 * 3 - 1 + 500 + 1000 * l);  // slot 5's last key, head 1
  }
  for (auto* c : {&one, &all}) c->end_forward();
  // A move onto a slot that another move reads from is refused.
  CHECK_THROWS_WITH(all.move_slots({{3, 1}, {1, 0}}), Catch::Contains("both a source and a destination"));
}

TEST_CASE("engine: greedy equals transformers' greedy on the fixtures", "[rollout][engine]") {
  for (const auto& name : kFixtures) {
    INFO(name);
    auto model = load(name);
    auto refs = greedy_refs(name);
    std::vector<std::vector<int64_t>> prompts;
    for (const auto& r : refs) prompts.push_back(r.prompt);  // lengths 5 and 9 in one batch
    auto out = run(model, prompts, greedy_params(16), /*G=*/2, 64);
    REQUIRE(out.size() == 2 * refs.size());
    for (size_t i = 0; i < out.size(); ++i) {
      CHECK(out[i].prompt_index == static_cast<int64_t>(i / 2));
      CHECK(out[i].sample_index == static_cast<int64_t>(i % 2));
      CHECK(out[i].ids == refs[i / 2].output);
      CHECK(out[i].finish == FinishReason::length);
      CHECK(out[i].logprobs.size() == 16);
    }
  }
}

TEST_CASE("engine: continuous batching returns what static batching returns", "[rollout][engine]") {
  auto model = load("qwen2_tied");
  auto prompts = random_prompts({4, 11, 7, 2, 9}, model->args().vocab_size, 23);
  // An EOS id that the greedy paths hit at different steps, so slots free up at different times.
  auto base = run(model, prompts, greedy_params(12), 1, 64);
  SamplingParams greedy = greedy_params(12);
  greedy.eos_ids = {base[0].ids[3], base[2].ids[6]};
  SamplingParams sampled;
  sampled.temperature = 1.0;
  sampled.top_p = 0.95;
  sampled.max_new_tokens = 12;
  sampled.eos_ids = greedy.eos_ids;
  for (const auto& sp : {greedy, sampled}) {
    auto ref = run(model, prompts, sp, 3, 64, 5);
    std::set<size_t> lengths;
    for (const auto& c : ref) lengths.insert(c.ids.size());
    INFO("temperature " << sp.temperature << ", distinct completion lengths " << lengths.size());
    CHECK(lengths.size() >= 2);
    for (int32_t slots : {1, 2, 5}) {
      auto got = run(model, prompts, sp, 3, slots, 5);
      REQUIRE(got.size() == ref.size());
      for (size_t i = 0; i < got.size(); ++i) {
        INFO("max_batch_seqs " << slots << " completion " << i);
        CHECK(got[i].ids == ref[i].ids);
        CHECK(got[i].finish == ref[i].finish);
        REQUIRE(got[i].logprobs.size() == ref[i].logprobs.size());
        for (size_t t = 0; t < got[i].logprobs.size(); ++t) {
          CHECK(got[i].logprobs[t] == Approx(ref[i].logprobs[t]).margin(1e-5));
        }
      }
    }
  }
}

TEST_CASE("engine: log-probs equal the training forward's token_logprobs at the temperature", "[rollout][engine]") {
  for (const std::string name : {"qwen2_tied", "qwen3"}) {
    INFO(name);
    auto model = load(name);
    auto prompts = random_prompts({5, 8, 3}, model->args().vocab_size, 29);
    for (double T : {1.0, 0.7}) {
      SamplingParams sp;
      sp.temperature = T;
      sp.top_k = 20;
      sp.top_p = 0.9;
      sp.max_new_tokens = 10;
      auto out = run(model, prompts, sp, 4, 64, 3);
      // The trainer's view: prompt + completion right-padded into one batch, attention mask, no cache.
      const int64_t B = static_cast<int64_t>(out.size());
      int64_t L = 0;
      for (const auto& c : out) L = std::max<int64_t>(L, prompts[c.prompt_index].size() + c.ids.size());
      auto tokens = at::zeros({B, L}, at::kLong), mask = at::zeros({B, L}, at::kLong);
      for (int64_t b = 0; b < B; ++b) {
        std::vector<int64_t> seq = prompts[out[b].prompt_index];
        seq.insert(seq.end(), out[b].ids.begin(), out[b].ids.end());
        tokens[b].narrow(0, 0, seq.size()).copy_(at::tensor(seq, at::kLong));
        mask[b].narrow(0, 0, seq.size()).fill_(1);
      }
      at::NoGradGuard ng;
      auto logits = model->forward(tokens, at::Tensor(), mask);            // [B, L, V]
      auto lp = rlvr::model::token_logprobs(logits.narrow(1, 0, L - 1) / T, tokens.narrow(1, 1, L - 1));  // [B, L-1]
      double worst = 0.0;
      for (int64_t b = 0; b < B; ++b) {
        const int64_t P = prompts[out[b].prompt_index].size();
        for (size_t t = 0; t < out[b].ids.size(); ++t) {
          worst = std::max(worst, std::abs(lp[b][P - 1 + t].item<double>() - out[b].logprobs[t]));
        }
      }
      INFO("T " << T << " max |sampler - trainer| = " << worst);
      CHECK(worst < 1e-5);
    }
  }
}

TEST_CASE("engine: EOS, stop strings and length end completions", "[rollout][engine]") {
  auto model = load("qwen2_tied");
  auto ref = greedy_refs("qwen2_tied")[0];
  // The first step k >= 2 whose token did not occur before: stopping on it ends exactly there.
  size_t k = 2;
  while (std::find(ref.output.begin(), ref.output.begin() + k, ref.output[k]) != ref.output.begin() + k) ++k;
  REQUIRE(k < ref.output.size());
  const std::vector<int64_t> upto(ref.output.begin(), ref.output.begin() + k + 1);
  SECTION("EOS id (one of several) is included, finish = stop") {
    auto sp = greedy_params(16);
    sp.eos_ids = {100000, ref.output[k]};
    auto out = run(model, {ref.prompt}, sp, 2, 64);
    for (const auto& c : out) {
      CHECK(c.ids == upto);
      CHECK(c.finish == FinishReason::stop);
      CHECK(c.logprobs.size() == upto.size());
    }
    sp.ignore_eos = true;
    auto all = run(model, {ref.prompt}, sp, 1, 64);
    CHECK(all[0].ids == ref.output);
    CHECK(all[0].finish == FinishReason::length);
  }
  SECTION("stop strings, one token or spanning two") {
    RolloutOptions o;
    o.detokenize = bracket_detok;
    RolloutEngine eng(model, o);
    auto sp = greedy_params(16);
    sp.stop = {"[" + std::to_string(ref.output[k]) + "]"};
    auto out = eng.generate({ref.prompt}, sp, 1);
    CHECK(out[0].ids == upto);
    CHECK(out[0].finish == FinishReason::stop);
    CHECK(out[0].text == bracket_detok(upto));
    sp.stop = {"zzz", std::to_string(ref.output[k - 1]) + "][" + std::to_string(ref.output[k])};
    out = eng.generate({ref.prompt}, sp, 1);
    CHECK(out[0].ids == upto);
    CHECK(out[0].finish == FinishReason::stop);
  }
  SECTION("max_new_tokens") {
    auto out = run(model, {ref.prompt}, greedy_params(1), 3, 64);
    for (const auto& c : out) {
      CHECK(c.ids == std::vector<int64_t>{ref.output[0]});
      CHECK(c.finish == FinishReason::length);
    }
  }
}

TEST_CASE("engine: a KV-cache budget limits slots, not results", "[rollout][engine]") {
  auto model = load("qwen2_gqa4");
  auto prompts = random_prompts({6, 3, 8}, model->args().vocab_size, 31);
  auto ref = run(model, prompts, greedy_params(8), 2, 64);
  RolloutOptions o;
  o.max_cached_tokens = 2 * (8 + 8);  // two slots of (longest prompt 8 + 8 new)
  RolloutEngine eng(model, o);
  auto got = eng.generate(prompts, greedy_params(8), 2);
  CHECK(eng.last_stats().slots == 2);
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i].ids == ref[i].ids);
  // A smaller budget than one slot: completions stop at the capacity with finish = length.
  o.max_cached_tokens = 10;
  RolloutEngine small(model, o);
  auto cut = small.generate({prompts[1]}, greedy_params(8), 1);
  CHECK(cut[0].ids.size() == 7);  // 10 positions - 3 prompt tokens
  CHECK(cut[0].finish == FinishReason::length);
}

TEST_CASE("engine: reproducible under a seed", "[rollout][engine]") {
  auto model = load("qwen2_tied");
  auto prompts = random_prompts({5, 7}, model->args().vocab_size, 37);
  SamplingParams sp;
  sp.temperature = 1.0;
  sp.max_new_tokens = 10;
  auto a = run(model, prompts, sp, 4, 64, 99);
  auto b = run(model, prompts, sp, 4, 64, 99);
  auto c = run(model, prompts, sp, 4, 64, 100);
  bool all_same_ab = true, all_same_ac = true, samples_differ = false;
  for (size_t i = 0; i < a.size(); ++i) {
    all_same_ab = all_same_ab && a[i].ids == b[i].ids && a[i].logprobs == b[i].logprobs;
    all_same_ac = all_same_ac && a[i].ids == c[i].ids;
    if (i % 4 != 0) samples_differ = samples_differ || a[i].ids != a[i - i % 4].ids;
  }
  CHECK(all_same_ab);
  CHECK_FALSE(all_same_ac);
  CHECK(samples_differ);  // the G samples of a prompt are different draws
  // The second call on one engine is a new draw; a fresh engine replays the first.
  RolloutOptions o;
  o.seed = 99;
  RolloutEngine eng(model, o);
  auto first = eng.generate(prompts, sp, 4);
  auto second = eng.generate(prompts, sp, 4);
  bool same = true;
  for (size_t i = 0; i < first.size(); ++i) same = same && first[i].ids == second[i].ids;
  CHECK_FALSE(same);
  for (size_t i = 0; i < first.size(); ++i) CHECK(first[i].ids == a[i].ids);
}

TEST_CASE("engine: bad input is an error, not a crash", "[rollout][engine]") {
  auto model = load("qwen2_tied");
  RolloutEngine eng(model, RolloutOptions{});
  CHECK_THROWS_WITH(eng.generate({{5, 6}, {}}, greedy_params(4), 2), Catch::Contains("prompt 1 is empty"));
  CHECK_THROWS_WITH(eng.generate({{5, 100000}}, greedy_params(4), 1), Catch::Contains("100000"));
  CHECK_THROWS_AS(eng.generate({{5, 6}}, greedy_params(4), 0), rlvr::Error);
  auto sp = greedy_params(4);
  sp.stop = {"x"};
  CHECK_THROWS_WITH(eng.generate({{5, 6}}, sp, 1), Catch::Contains("detokenizer"));
  RolloutOptions o;
  o.max_cached_tokens = 8;
  RolloutEngine small(model, o);
  std::vector<int64_t> ten(10, 7);
  CHECK_THROWS_WITH(small.generate({ten}, greedy_params(4), 1), Catch::Contains("10 tokens") && Catch::Contains("8"));
  // Prompts beyond the model's 256 positions.
  std::vector<int64_t> long_prompt(300, 7);
  CHECK_THROWS_WITH(eng.generate({long_prompt}, greedy_params(4), 1), Catch::Contains("300 tokens"));
  CHECK(eng.generate({}, greedy_params(4), 2).empty());
}

TEST_CASE("engine: token confidence is -(1/k) sum of the top-k log-probs at the sampling temperature",
          "[rollout][engine][confidence]") {
  auto model = load("qwen2_tied");
  auto prompts = random_prompts({6}, model->args().vocab_size, 5);
  SamplingParams sp;
  sp.temperature = 0.7;
  sp.max_new_tokens = 8;
  RolloutOptions o;
  o.seed = 3;
  RolloutEngine eng(model, o);
  rlvr::rollout::GenerateControl ctl;
  ctl.confidence_top_k = 5;
  auto out = eng.generate(prompts, sp, 2, ctl);
  for (const auto& c : out) {
    REQUIRE(c.confidence.size() == c.ids.size());
    std::vector<int64_t> seq = prompts[0];
    seq.insert(seq.end(), c.ids.begin(), c.ids.end());
    at::NoGradGuard ng;
    auto logits = model->forward(row_tensor(seq), at::Tensor(), at::Tensor())[0].to(at::kDouble) / 0.7;  // [T, V]
    for (size_t t = 0; t < c.ids.size(); ++t) {
      auto z = logits[prompts[0].size() - 1 + t];                                  // [V] predicts ids[t]
      auto lp = z - at::logsumexp(z, 0);
      const double want = -std::get<0>(at::topk(lp, 5)).mean().item<double>();   // by the definition
      CHECK(c.confidence[t] == Approx(want).epsilon(1e-4));
    }
  }
  // Off by default: nothing recorded.
  auto plain = eng.generate(prompts, sp, 1);
  CHECK(plain[0].confidence.empty());
}

TEST_CASE("engine: a call split by sample offsets draws what one call draws", "[rollout][engine][confidence]") {
  auto model = load("qwen2_tied");
  auto prompts = random_prompts({5, 8}, model->args().vocab_size, 11);
  SamplingParams sp;
  sp.temperature = 1.0;
  sp.max_new_tokens = 12;
  RolloutOptions o;
  o.seed = 21;
  o.max_batch_seqs = 1;  // one sequence at a time: the same forward shapes in both runs, so bit-equal
  RolloutEngine whole(model, o), split(model, o);
  auto all = whole.generate(prompts, sp, 5);
  rlvr::rollout::GenerateControl a, b;
  a.call = 0;
  b.call = 0;
  b.sample_offset = 2;
  auto first = split.generate(prompts, sp, 2, a);
  auto rest = split.generate(prompts, sp, 3, b);
  for (size_t i = 0; i < prompts.size(); ++i) {
    for (int j = 0; j < 5; ++j) {
      const auto& want = all[i * 5 + j];
      const auto& got = j < 2 ? first[i * 2 + j] : rest[i * 3 + (j - 2)];
      CHECK(got.sample_index == j);
      CHECK(got.ids == want.ids);
      CHECK(got.logprobs == want.logprobs);
    }
  }
  bool differ = false;  // the samples are different draws, so the equality above says something
  for (int j = 1; j < 5; ++j) differ = differ || all[j].ids != all[0].ids;
  CHECK(differ);
}

TEST_CASE("engine: stop_if ends one sequence while the batch continues", "[rollout][engine][confidence]") {
  auto model = load("qwen2_tied");
  auto prompts = random_prompts({5, 6}, model->args().vocab_size, 13);
  SamplingParams sp;
  sp.temperature = 1.0;
  sp.max_new_tokens = 10;
  sp.ignore_eos = true;
  RolloutOptions o;
  o.seed = 8;
  o.max_batch_seqs = 1;
  RolloutEngine ref_eng(model, o), eng(model, o);
  auto ref = ref_eng.generate(prompts, sp, 3);
  rlvr::rollout::GenerateControl ctl;
  ctl.stop_if = [](const Completion& c) { return c.prompt_index == 1 && c.sample_index == 1 && c.ids.size() == 3; };
  auto out = eng.generate(prompts, sp, 3, ctl);
  for (size_t i = 0; i < out.size(); ++i) {
    if (i == 4) {
      CHECK(out[i].finish == FinishReason::aborted);
      CHECK(out[i].ids == std::vector<int64_t>(ref[i].ids.begin(), ref[i].ids.begin() + 3));
    } else {
      CHECK(out[i].finish == FinishReason::length);
      CHECK(out[i].ids == ref[i].ids);
    }
  }
  CHECK(eng.last_stats().aborted == 1);
  CHECK(std::string(rlvr::rollout::to_string(FinishReason::aborted)) == "aborted");
}

TEST_CASE("engine: a thinking budget forces the close tokens and generation continues", "[rollout][engine][think]") {
  auto model = load("qwen2_tied");
  auto ref = greedy_refs("qwen2_tied")[0];
  REQUIRE(ref.output.size() >= 6);
  RolloutOptions o;
  o.detokenize = bracket_detok;
  RolloutEngine eng(model, o);
  auto sp = greedy_params(8);
  sp.ignore_eos = true;
  rlvr::rollout::GenerateControl ctl;
  ctl.think.max_tokens = 3;
  ctl.think.close = "[999999]";  // never generated: only the budget can close the span
  ctl.think.close_ids = {7, 9};
  SECTION("span opened by the prompt: 3 thinking tokens, then the close tokens, then the answer") {
    ctl.think.open_in_prompt = true;
    auto out = eng.generate({ref.prompt}, sp, 1, ctl);
    const auto& ids = out[0].ids;
    REQUIRE(ids.size() == 8);
    CHECK(std::vector<int64_t>(ids.begin(), ids.begin() + 3) ==
          std::vector<int64_t>(ref.output.begin(), ref.output.begin() + 3));
    CHECK(ids[3] == 7);
    CHECK(ids[4] == 9);
    CHECK(out[0].think_forced);
    CHECK(out[0].think_tokens == 3);
    CHECK(out[0].logprobs.size() == 8);
    CHECK(out[0].logprobs[3] < 0.0f);  // the forced token's log-prob under the model, not a placeholder
  }
  SECTION("span opened by a generated tag counts from there") {
    ctl.think.open = "[" + std::to_string(ref.output[0]) + "]";
    auto out = eng.generate({ref.prompt}, sp, 1, ctl);
    const auto& ids = out[0].ids;
    REQUIRE(ids.size() == 8);
    CHECK(ids[4] == 7);  // open tag at 0, thinking tokens 1..3, close at 4..5
    CHECK(ids[5] == 9);
    CHECK(out[0].think_tokens == 3);
  }
  SECTION("a span closed by the model is not forced") {
    // the first generated token that did not occur before closes the span (an earlier one would match sooner)
    size_t k = 1;
    while (k < ref.output.size() && std::find(ref.output.begin(), ref.output.begin() + k, ref.output[k]) !=
                                        ref.output.begin() + k)
      ++k;
    REQUIRE(k + 1 < 8);
    ctl.think.open_in_prompt = true;
    ctl.think.max_tokens = static_cast<int32_t>(k) + 3;
    ctl.think.close = "[" + std::to_string(ref.output[k]) + "]";
    auto out = eng.generate({ref.prompt}, sp, 1, ctl);
    CHECK_FALSE(out[0].think_forced);
    CHECK(out[0].think_tokens == static_cast<int64_t>(k) + 1);
    CHECK(std::vector<int64_t>(out[0].ids.begin(), out[0].ids.begin() + 6) ==
          std::vector<int64_t>(ref.output.begin(), ref.output.begin() + 6));
  }

}
