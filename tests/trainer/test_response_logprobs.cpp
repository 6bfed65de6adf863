// response_logprobs (forward_hidden + lm_head_logprobs at response positions) against the straightforward path:
// full [B, T, V] logits from CausalLM::forward, log_softmax and entropy in fp64, gathered at the response
// positions. Values and the gradients of a loss through log-probs and entropy, on padded batches, for each
// architecture and temperatures 1.0 and 0.7; with and without gradient checkpointing.
// Legend: B = rows, L = longest response, V = vocab.
#include <catch2/catch.hpp>
#include <torch/autograd.h>
#include <torch/torch.h>

#include "model/causal_lm.h"
#include "logprob_fixtures.h"
#include "trainer/batch.h"

using namespace rlvr;

namespace {

using test::Batch;
using test::small_args;

Batch make_batch(int64_t vocab) {
  Batch b;
  torch::manual_seed(21);
  // Different prompt and response lengths (padding in both), one empty response.
  for (auto [p, r] : std::vector<std::pair<int, int>>{{3, 6}, {5, 2}, {2, 0}, {4, 4}})
    b.prompts.push_back(test::random_ids(vocab, p)), b.responses.push_back(test::random_ids(vocab, r));
  b.pack();
  return b;
}

struct Result {
  torch::Tensor logp, entropy;     // [B, L] fp64
  std::vector<torch::Tensor> grads;  // per parameter, fp64
};

// loss = sum(a * logp * mask) + sum(c * entropy * mask), a and c fixed per token.
Result run(model::CausalLM& lm, const trainer::PackedBatch& pb, double temp, bool reference, bool ckpt) {
  const auto L = pb.resp_mask.size(1), B = pb.resp_mask.size(0);
  torch::manual_seed(8);
  auto a = torch::randn({B, L}, torch::kDouble), c = torch::randn({B, L}, torch::kDouble);
  auto params = lm.parameters();
  torch::Tensor logp, ent;
  if (reference) {
    auto logits = lm.forward(pb.tokens, pb.positions, pb.attn_mask).to(torch::kDouble) / temp;  // [B, T, V]
    auto idx = pb.resp_index.unsqueeze(-1).expand({B, L, logits.size(2)});
    auto lsm = torch::log_softmax(logits.gather(1, idx), -1);                                // [B, L, V]
    logp = lsm.gather(-1, pb.resp_tokens.unsqueeze(-1)).squeeze(-1) * pb.resp_mask;         // [B, L]
    ent = -(lsm.exp() * lsm).sum(-1) * pb.resp_mask;                                        // [B, L]
  } else {
    auto r = trainer::response_logprobs(lm, pb, temp, /*want_entropy=*/true, /*grad_entropy=*/true, ckpt);
    logp = r.logp.to(torch::kDouble);
    ent = r.entropy.to(torch::kDouble);
  }
  auto loss = (a * logp * pb.resp_mask).sum() + (c * ent * pb.resp_mask).sum();
  auto g = torch::autograd::grad({loss}, params, {}, false, false, /*allow_unused=*/true);
  Result out{logp.detach(), ent.detach(), {}};
  for (auto& t : g) out.grads.push_back(t.defined() ? t.to(torch::kDouble) : torch::Tensor());
  return out;
}

}  // namespace

// Tolerance: both paths run the same fp32 decoder; they differ in the head (chunked fp32 vs fp64 softmax:
// about 2 H u max|z| + V u, u = 2^-24, see tests/model/test_lm_head_logprobs.cpp, i.e. < 1e-5 here) and in the
// order of fp32 sums in the backward through 2 layers (each GEMM of length <= 4 H: <= 4 H u relative to the sum
// of absolute terms, ~1e-5). So log-probs and entropy to 2e-5 absolute, each parameter's gradient to 1e-4 of
// its largest entry.
TEST_CASE("response_logprobs equals full logits in fp64 in value and gradient", "[trainer][logprobs]") {
  for (const char* type : {"qwen2", "llama", "qwen3"}) {
    for (double temp : {1.0, 0.7}) {
      SECTION(std::string(type) + " temperature " + std::to_string(temp)) {
        auto lm = model::CausalLM::from_args(small_args(type), 9, torch::kCPU);
        auto b = make_batch(lm->args().vocab_size);
        auto ref = run(*lm, b.pb, temp, true, false);
        for (bool ckpt : {false, true}) {
          auto got = run(*lm, b.pb, temp, false, ckpt);
          INFO("gradient_checkpointing " << ckpt);
          CHECK((got.logp - ref.logp).abs().max().item<double>() < 2e-5);
          CHECK((got.entropy - ref.entropy).abs().max().item<double>() < 2e-5);
          CHECK(got.logp[2].abs().sum().item<double>() == 0);  // empty response: nothing scored
          REQUIRE(got.grads.size() == ref.grads.size());
          for (size_t i = 0; i < got.grads.size(); ++i) {
            REQUIRE(ref.grads[i].defined());
            const double scale = ref.grads[i].abs().max().item<double>();
            CHECK(scale > 1e-6);  // every parameter gets a gradient (embedding, layers, norms, head)
            CHECK((got.grads[i] - ref.grads[i]).abs().max().item<double>() <= 1e-4 * scale);
          }
        }
      }
    }
  }
}

TEST_CASE("response_logprobs: entropy without grad_entropy is detached and temperature <= 0 scores at 1",
          "[trainer][logprobs]") {
  auto lm = model::CausalLM::from_args(small_args("qwen2"), 9, torch::kCPU);
  auto b = make_batch(lm->args().vocab_size);
  auto r = trainer::response_logprobs(*lm, b.pb, 1.0, true, false);
  CHECK(r.logp.requires_grad());
  CHECK_FALSE(r.entropy.requires_grad());
  CHECK((r.entropy.sum(1) > 0).sum().item<int64_t>() == 3);  // three rows have response tokens
  auto none = trainer::response_logprobs(*lm, b.pb, 1.0, false, false);
  CHECK_FALSE(none.entropy.defined());
  auto greedy = trainer::response_logprobs(*lm, b.pb, 0.0, false, false);
  CHECK(torch::equal(greedy.logp, none.logp));
  auto hot = trainer::response_logprobs(*lm, b.pb, 0.7, false, false);
  CHECK((hot.logp - none.logp).abs().max().item<double>() > 1e-3);  // the temperature does reach the head
}

// Shared-prompt packing (train.share_prompt): each distinct prompt once per row, its completions behind it under a
// block mask. Every response sees exactly the tokens it sees alone, at the same positions, so log-probs, entropy
// and gradients equal one-row-per-completion packing up to fp32 summation order (the same bounds as above).
TEST_CASE("pack_shared_prompts gives the log-probs and gradients of one row per completion", "[trainer][logprobs]") {
  for (const char* type : {"qwen2", "llama", "qwen3"}) {
    for (double temp : {1.0, 0.7}) {
      SECTION(std::string(type) + " temperature " + std::to_string(temp)) {
        auto lm = model::CausalLM::from_args(small_args(type), 9, torch::kCPU);
        torch::manual_seed(5);
        auto draw = [&](int64_t n) { return test::random_ids(lm->args().vocab_size, n); };
        const auto pa = draw(4), pb = draw(2);
        const auto pa_copy = pa;  // the same prompt held twice: merged by content
        std::vector<const std::vector<int64_t>*> pr{&pa, &pb, &pa_copy, &pa, &pb, &pb};
        std::vector<std::vector<int64_t>> resp{draw(5), draw(3), draw(1), draw(0), draw(6), draw(2)};
        std::vector<const std::vector<int64_t>*> rs;
        for (auto& r : resp) rs.push_back(&r);
        auto plain = trainer::pack_batch(pr, rs, 0, torch::kCPU);
        auto shared = trainer::pack_shared_prompts(pr, rs, 0, torch::kCPU);
        CHECK(shared.tokens.size(0) == 2);                                   // two distinct prompts
        CHECK(shared.tokens.size(1) == 2 + 3 + 6 + 2);                       // prompt b and its three responses
        CHECK(shared.attn_mask.sum().item<int64_t>() == 4 + 2 + 5 + 3 + 1 + 0 + 6 + 2);
        CHECK(trainer::shared_prompt_tokens(pr, rs) == shared.attn_mask.sum().item<int64_t>());
        CHECK(plain.attn_mask.sum().item<int64_t>() == 4 * 3 + 2 * 3 + 17);  // every prompt once per completion
        CHECK(shared.real_tokens == 23);  // the host-side count the update's padding metric reads
        CHECK(plain.real_tokens == 4 * 3 + 2 * 3 + 17);
        for (bool ckpt : {false, true}) {
          auto want = run(*lm, plain, temp, false, ckpt);
          auto got = run(*lm, shared, temp, false, ckpt);
          INFO("gradient_checkpointing " << ckpt);
          CHECK(want.logp.abs().sum().item<double>() > 1);
          CHECK((got.logp - want.logp).abs().max().item<double>() < 2e-5);
          CHECK((got.entropy - want.entropy).abs().max().item<double>() < 2e-5);
          for (size_t i = 0; i < got.grads.size(); ++i) {
            const double scale = want.grads[i].abs().max().item<double>();
            CHECK(scale > 1e-6);
            CHECK((got.grads[i] - want.grads[i]).abs().max().item<double>() <= 1e-4 * scale);
          }
        }
        // The block mask is what keeps siblings apart: plain causal attention over the same rows lets the
        // second response of a prompt see the first, and its log-probs change.
        auto leaky = shared;
        leaky.block_mask = torch::Tensor();
        auto lk = trainer::response_logprobs(*lm, leaky, temp, false, false).logp;
        auto ok = trainer::response_logprobs(*lm, shared, temp, false, false).logp;
        CHECK((lk[4] - ok[4]).abs().max().item<double>() > 1e-4);
        CHECK((lk[0] - ok[0]).abs().max().item<double>() < 1e-6);  // the first response sees only the prompt anyway
      }
    }
  }
}
