// response_policy_loss (the GRPO update's path: the lm_head's gradient formed in the forward, chunk by chunk)
// against policy_loss over response_logprobs (the head's backward recomputes the logits): the same loss value,
// metrics and parameter gradients, for every loss aggregation, KL estimator, the entropy bonus, the dual clip,
// active clipping, masked tokens, padding, shared-prompt packing, both temperatures and every architecture.
// Legend: B = completions, L = longest response.
#include <catch2/catch.hpp>
#include <torch/autograd.h>
#include <torch/torch.h>

#include "model/causal_lm.h"
#include "logprob_fixtures.h"
#include "trainer/batch.h"
#include "trainer/policy_loss.h"
#include "trainer/response_loss.h"

using namespace rlvr;

namespace {

using test::Batch;
using test::small_args;

// Five completions of three prompts (two groups share a prompt), different lengths, one empty response.
Batch make_batch(int64_t vocab, bool shared) {
  Batch b;
  torch::manual_seed(21);
  auto p0 = test::random_ids(vocab, 3), p1 = test::random_ids(vocab, 5);
  b.prompts = {p0, p0, p1, p1, test::random_ids(vocab, 4)};
  for (int n : {6, 3, 0, 5, 4}) b.responses.push_back(test::random_ids(vocab, n));
  b.pack(shared);
  return b;
}

struct Out {
  double loss = 0;
  std::map<std::string, double> metrics;
  std::vector<torch::Tensor> grads;  // per parameter
};

Out run(model::CausalLM& lm, const trainer::PackedBatch& pb, const trainer::PolicyLossInputs& in,
        const trainer::PolicyLossConfig& cfg, const trainer::GlobalNorm& norm, double temp, bool fused, bool ckpt) {
  torch::Tensor loss;
  trainer::PolicyLossMetrics m;
  if (fused) {
    auto lo = trainer::response_policy_loss(lm, pb, temp, in, cfg, norm, /*want_entropy=*/true, ckpt);
    loss = lo.loss;
    m = lo.metrics;
    CHECK_FALSE(lo.logprobs.logp.requires_grad());
  } else {
    auto rl = trainer::response_logprobs(lm, pb, temp, true, cfg.entropy_coef != 0, ckpt);
    auto x = in;
    x.logp = rl.logp;
    x.entropy = rl.entropy;
    auto lo = trainer::policy_loss(x, cfg, norm);
    loss = lo.loss;
    m = lo.metrics;
  }
  auto params = lm.parameters();
  auto g = torch::autograd::grad({loss}, params, {}, false, false, /*allow_unused=*/true);
  Out o{loss.item<double>(), m.to_map(), {}};
  for (auto& t : g) o.grads.push_back(t.defined() ? t.to(torch::kDouble) : torch::zeros({1}, torch::kDouble));
  return o;
}

// The largest difference of two gradient sets relative to each tensor's largest entry.
double max_rel_diff(const Out& a, const Out& b) {
  double worst = 0;
  for (size_t i = 0; i < a.grads.size(); ++i) {
    const double scale = b.grads[i].abs().max().item<double>();
    worst = std::max(worst, (a.grads[i] - b.grads[i]).abs().max().item<double>() / std::max(scale, 1e-30));
  }
  return worst;
}

}  // namespace

// Tolerance: both paths run the same fp32 decoder and the same per-token formulas; they differ in how each
// token's aggregation weight is rounded (1/n folded into one weight: <= 2 ulp relative) and in the order of the
// fp32 sums that follow (the head's GEMMs are the same calls on the same chunks). Through 2 layers that is at
// most a few hundred ulp of each tensor's largest gradient: 1e-5 of it (~170 ulp). The metrics are computed by
// policy_loss on log-probs that are equal to the last bit, so they agree to 1e-9 relative. A loss that differs in
// one setting (the aggregation: token-mean vs seq-mean-token-mean) changes the gradients by far more than that.
TEST_CASE("response_policy_loss (fused lm_head gradient) equals policy_loss over response_logprobs",
          "[trainer][logprobs]") {
  struct Setting {
    const char* name;
    trainer::LossAgg agg;
    double kl_coef, entropy_coef, clip_ratio_c;
    trainer::KlEstimator est;
  };
  const std::vector<Setting> settings{
      {"token-mean", trainer::LossAgg::token_mean, 0.0, 0.0, 0.0, trainer::KlEstimator::k3},
      {"seq-mean-token-mean, k3 KL, entropy", trainer::LossAgg::seq_mean_token_mean, 0.1, 0.01, 0.0,
       trainer::KlEstimator::k3},
      {"seq-mean-token-sum-norm, k1 KL, dual clip", trainer::LossAgg::seq_mean_token_sum_norm, 0.05, 0.0, 3.0,
       trainer::KlEstimator::k1},
      {"token-mean, k2 KL, entropy, dual clip", trainer::LossAgg::token_mean, 0.2, 0.02, 2.0,
       trainer::KlEstimator::k2},
  };
  for (const char* type : {"qwen2", "llama", "qwen3"}) {
    for (double temp : {1.0, 0.7}) {
      for (bool shared : {false, true}) {
        for (const auto& st : settings) {
          SECTION(std::string(type) + " T=" + std::to_string(temp) + (shared ? " shared" : " plain") + " " +
                  st.name) {
            auto lm = model::CausalLM::from_args(small_args(type), 9, torch::kCPU);
            auto b = make_batch(lm->args().vocab_size, shared);
            const int64_t B = b.pb.resp_mask.size(0), L = b.pb.resp_mask.size(1);
            torch::Tensor logp0;
            {
              torch::NoGradGuard ng;
              logp0 = trainer::response_logprobs(*lm, b.pb, temp, false, false).logp;  // [B, L]
            }
            torch::manual_seed(4);
            trainer::PolicyLossInputs in;
            // Old log-probs 0.5 away on average: many ratios fall outside [0.8, 1.2], so the clips are active.
            in.old_logp = logp0 + 0.5 * torch::randn({B, L});
            in.advantages = torch::tensor({1.0f, -0.5f, 0.3f, -1.2f, 0.8f});
            in.mask = b.pb.resp_mask.clone();
            in.mask[3][1] = 0;  // a masked response token (as algorithm.mask_truncated makes them)
            in.ref_logp = logp0 + 0.3 * torch::randn({B, L});
            trainer::PolicyLossConfig cfg;
            cfg.agg = st.agg;
            cfg.clip_low = 0.2;
            cfg.clip_high = 0.2;
            cfg.clip_ratio_c = st.clip_ratio_c;
            cfg.kl_coef = st.kl_coef;
            cfg.kl_estimator = st.est;
            cfg.entropy_coef = st.entropy_coef;
            auto norm = trainer::local_norm_counts(in.mask);
            norm.norm_len = 8;
            for (bool ckpt : {false, true}) {
              INFO("gradient_checkpointing " << ckpt);
              auto want = run(*lm, b.pb, in, cfg, norm, temp, false, ckpt);
              auto got = run(*lm, b.pb, in, cfg, norm, temp, true, ckpt);
              CHECK(got.loss == Approx(want.loss).epsilon(1e-9).margin(1e-12));
              for (const auto& [k, v] : want.metrics) {
                INFO(k);
                CHECK(got.metrics.at(k) == Approx(v).epsilon(1e-9).margin(1e-12));
              }
              // The settings exercise what they name: clipping active, the KL and entropy terms present.
              CHECK(want.metrics.at("loss/clip_frac_low") + want.metrics.at("loss/clip_frac_high") > 0.05);
              if (st.kl_coef != 0) CHECK(want.metrics.at("loss/kl_loss") != 0);
              if (st.entropy_coef != 0) CHECK(want.metrics.at("loss/entropy_loss") > 0);
              for (size_t i = 0; i < want.grads.size(); ++i) CHECK(want.grads[i].abs().max().item<double>() > 1e-7);
              CHECK(max_rel_diff(got, want) <= 1e-5);
              if (!ckpt && st.kl_coef == 0 && st.entropy_coef == 0) {
                auto other = cfg;
                other.agg = trainer::LossAgg::seq_mean_token_mean;  // each sequence's tokens weighted 1 / n_i
                auto moved = run(*lm, b.pb, in, other, norm, temp, true, ckpt);
                CHECK(max_rel_diff(moved, want) > 1e-3);  // the comparison can see a one-setting change
              }
            }
          }
        }
      }
    }
  }
}

TEST_CASE("response_policy_loss rejects a mask or old log-probs of the wrong shape", "[trainer][logprobs]") {
  auto lm = model::CausalLM::from_args(small_args("qwen2"), 9, torch::kCPU);
  auto b = make_batch(lm->args().vocab_size, false);
  trainer::PolicyLossInputs in;
  in.old_logp = torch::zeros_like(b.pb.resp_mask);
  in.advantages = torch::ones({5});
  in.mask = torch::ones({5, 2});
  trainer::GlobalNorm norm{10, 5, 8};
  CHECK_THROWS_WITH(trainer::response_policy_loss(*lm, b.pb, 1.0, in, {}, norm, true, false),
                    Catch::Contains("mask must be [B=5"));
  in.mask = b.pb.resp_mask;
  in.old_logp = torch::zeros({5, 2});
  CHECK_THROWS_WITH(trainer::response_policy_loss(*lm, b.pb, 1.0, in, {}, norm, true, false),
                    Catch::Contains("old_logp must be [B=5"));
}
