// lm_head_logprobs (log-probs and entropy from hidden states, chunked, recomputing backward) against the
// straightforward full-logits computation in fp64, in value and gradient, with worst-case rounding bounds
// derived below; and the two attention paths (causal without a mask, explicit mask) giving the same log-probs.
// Legend: N = scored tokens, H = hidden, V = vocab.
#include <ATen/ATen.h>
#include <torch/autograd.h>

#include <cmath>

#include "common/error.h"
#include "model/causal_lm.h"
#include "model/lm_head_logprobs.h"
#include "model_fixtures.h"

using namespace rlvr::model;

namespace {

const auto kF64 = at::TensorOptions().dtype(at::kDouble);

ModelArgs small_args(const std::string& type) {
  ModelArgs a;
  a.model_type = type;
  a.vocab_size = 211;  // several chunks with chunk_rows below, and more than one row per chunk
  a.hidden_size = 32;
  a.intermediate_size = 48;
  a.num_hidden_layers = 2;
  a.num_attention_heads = 4;
  a.num_key_value_heads = 2;
  a.attention_bias = type != "qwen3";
  a.qk_norm = type == "qwen3";
  a.tie_word_embeddings = type == "qwen2";  // tied (Qwen2.5 small) and untied heads
  if (type == "llama") a.rope_scaling_factor = 8.0, a.rope_original_max_position = 8;  // Llama 3 rope
  return a;
}

// Right-padded rows of lengths 9, 6, 4: the hidden states at each row's real positions but the last, and the
// next tokens as targets (what `rlvr logprobs` scores).
struct Scored {
  at::Tensor hidden;   // [N, H] fp32
  at::Tensor targets;  // [N] int64
};

Scored scored_positions(CausalLM& lm) {
  torch::manual_seed(11);
  const std::vector<int64_t> lens{9, 6, 4};
  auto ids = at::randint(0, lm.args().vocab_size, {3, 9}, at::kLong);  // [3, 9]
  auto mask = at::zeros({3, 9}, at::kLong);
  std::vector<int64_t> src, tgt;
  for (int64_t b = 0; b < 3; ++b) {
    mask[b].narrow(0, 0, lens[b]).fill_(1);
    for (int64_t t = 0; t + 1 < lens[b]; ++t) src.push_back(b * 9 + t), tgt.push_back(ids[b][t + 1].item<int64_t>());
  }
  at::NoGradGuard ng;
  auto h = lm.forward_hidden(ids, at::Tensor(), mask);  // [3, 9, H]
  return {h.reshape({27, h.size(2)}).index_select(0, at::tensor(src, at::kLong)), at::tensor(tgt, at::kLong)};
}

struct Reference {  // fp64 full-logits results and their gradients for loss = sum(a * logp) + sum(c * entropy)
  at::Tensor logp, entropy, p, logpr, ds, dh, dw;
};

Reference reference(const at::Tensor& h32, const at::Tensor& w32, const at::Tensor& tgt, double temp,
                    const at::Tensor& a, const at::Tensor& c) {
  auto h = h32.to(at::kDouble).requires_grad_(true);  // [N, H] fp64 leaf
  auto w = w32.to(at::kDouble).requires_grad_(true);  // [V, H]
  auto s = at::matmul(h, w.t()) / temp;               // [N, V] fp64 logits / temperature
  auto lsm = at::log_softmax(s, -1);                  // [N, V]
  auto logp = lsm.gather(1, tgt.unsqueeze(1)).squeeze(1);       // [N]
  auto ent = -(lsm.exp() * lsm).sum(-1);                         // [N]
  auto g = torch::autograd::grad({(a * logp).sum() + (c * ent).sum()}, {h, w, s});
  return {logp.detach(), ent.detach(), lsm.exp().detach(), lsm.detach(), g[2] * temp, g[0], g[1]};
}

double max_excess(const at::Tensor& err, const at::Tensor& tol) { return (err - tol).max().item<double>(); }

}  // namespace

TEST_CASE("lm_head_logprobs by hand", "[model][logprobs]") {
  // hidden [1, 0] through rows [0, 0], [0, 0], [ln 2, 0]: logits [0, 0, ln 2] -> p = [1/4, 1/4, 1/2].
  auto h = at::tensor({1.0f, 0.0f}).view({1, 2}).repeat({2, 1});  // [2, 2]
  auto w = at::zeros({3, 2});
  w[2][0] = static_cast<float>(std::log(2.0));
  auto t = at::tensor({2L, 0L});
  LmHeadLogprobOptions o;
  o.entropy = true;
  auto r = lm_head_logprobs(h, w, t, o);
  CHECK(r.logp[0].item<double>() == Approx(std::log(0.5)).epsilon(1e-6));
  CHECK(r.logp[1].item<double>() == Approx(std::log(0.25)).epsilon(1e-6));
  CHECK(r.entropy[0].item<double>() == Approx(1.5 * std::log(2.0)).epsilon(1e-6));  // -(2/4 ln 1/4 + 1/2 ln 1/2)
  // Temperature 0.5: logits / 0.5 = [0, 0, 2 ln 2] -> p = [1, 1, 4] / 6.
  o.temperature = 0.5;
  CHECK(lm_head_logprobs(h, w, t, o).logp[0].item<double>() == Approx(std::log(4.0 / 6.0)).epsilon(1e-6));
  CHECK_THROWS_AS(lm_head_logprobs(h, w, at::tensor({3L, 0L})), rlvr::Error);
  o.temperature = 0;
  CHECK_THROWS_AS(lm_head_logprobs(h, w, t, o), rlvr::Error);
}

// Worst-case fp32 rounding, u = 2^-24 (the bound holds for any summation order, so for any GEMM kernel):
//  - a logit is a dot product of length H: |dz| <= H u sum_k |h_k w_k| (+ u |z| for the division by T);
//  - logsumexp over V terms adds at most (V + 2) u (1 + max |s|); logp = s_t - lse then errs by
//    eps = 2 max|ds| + (V + 2) u (1 + max|s|), and so does every log p_j;
//  - p_j = exp(log p_j) errs by p_j (eps + u); the entropy -sum p log p by (eps + u)(1 + max|log p|) + eps
//    + V u (1 + max|log p|) (its own sum);
//  - the logit gradient ds_j = a([j = t] - p_j) - c p_j (log p_j + Hs) then errs by
//    p_j (|a| (eps + 2u) + |c| ((eps + 2u)(|log p_j| + Hs) + eps + tol_H)) + 4 u |ds_j|, and the two GEMMs
//    dh = dz W, dW = dz^T h add a length-V (resp. N) dot product's rounding on top (their bounds as tensors).
TEST_CASE("lm_head_logprobs equals the fp64 full-logits computation in value and gradient", "[model][logprobs]") {
  const double u = std::ldexp(1.0, -24);
  for (const char* type : {"qwen2", "llama", "qwen3"}) {
    for (double temp : {1.0, 0.7}) {
      SECTION(std::string(type) + " temperature " + std::to_string(temp)) {
        auto lm = CausalLM::from_args(small_args(type), 3, at::kCPU);
        auto sc = scored_positions(*lm);
        const int64_t N = sc.hidden.size(0), H = sc.hidden.size(1), V = lm->args().vocab_size;
        REQUIRE(N == 8 + 5 + 3);
        auto h = sc.hidden.detach().clone().requires_grad_(true);          // [N, H] fp32 leaf
        auto w = lm->lm_head_weight().detach().clone().requires_grad_(true);  // [V, H] fp32 leaf
        torch::manual_seed(5);
        auto a = at::randn({N}, kF64), c = at::randn({N}, kF64);  // loss weights (advantages, entropy coef)
        LmHeadLogprobOptions o;
        o.temperature = temp;
        o.entropy = true;
        o.chunk_rows = 5;  // 4 chunks, the last one short
        auto r = lm_head_logprobs(h, w, sc.targets, o);
        auto loss = (a.to(at::kFloat) * r.logp).sum() + (c.to(at::kFloat) * r.entropy).sum();
        auto g = torch::autograd::grad({loss}, {h, w});
        auto ref = reference(sc.hidden, lm->lm_head_weight().detach(), sc.targets, temp, a, c);

        auto ah = sc.hidden.to(at::kDouble).abs(), aw = lm->lm_head_weight().detach().to(at::kDouble).abs();
        auto s_abs = at::matmul(ah, aw.t()) / temp;                                     // [N, V] sum |h w| / T
        const double ds_max = H * u * s_abs.max().item<double>() + u * s_abs.max().item<double>();
        const double smax = s_abs.max().item<double>();
        const double eps = 2 * ds_max + (V + 2) * u * (1 + smax);
        const double max_logp = ref.logpr.abs().max().item<double>();
        const double tol_ent = (eps + u) * (1 + max_logp) + eps + V * u * (1 + max_logp);
        INFO(type << " T=" << temp << ": eps " << eps << ", tol_H " << tol_ent);
        CHECK(eps < 1e-4);  // the bound is tight enough to mean something
        CHECK(max_excess((r.logp.to(at::kDouble) - ref.logp).abs(), at::full({N}, eps, kF64)) <= 0);
        CHECK(max_excess((r.entropy.to(at::kDouble) - ref.entropy).abs(), at::full({N}, tol_ent, kF64)) <= 0);

        auto Hs = ref.entropy.unsqueeze(1);                                                       // [N, 1]
        auto tol_ds = ref.p * (a.abs().unsqueeze(1) * (eps + 2 * u) +
                               c.abs().unsqueeze(1) * ((eps + 2 * u) * (ref.logpr.abs() + Hs) + eps + tol_ent)) +
                      4 * u * ref.ds.abs();                                                       // [N, V]
        auto dz_abs = ref.ds.abs() / temp, tol_dz = tol_ds / temp;                                // [N, V]
        auto tol_dh = at::matmul(tol_dz, aw) + V * u * at::matmul(dz_abs, aw);                   // [N, H]
        auto tol_dw = at::matmul(tol_dz.t(), ah) + (N + 1) * u * at::matmul(dz_abs.t(), ah);     // [V, H]
        CHECK(ref.dh.abs().max().item<double>() > 1e-3);  // the compared gradients are not ~0
        CHECK(ref.dw.abs().max().item<double>() > 1e-3);
        CHECK(max_excess((g[0].to(at::kDouble) - ref.dh).abs(), tol_dh) <= 0);
        CHECK(max_excess((g[1].to(at::kDouble) - ref.dw).abs(), tol_dw) <= 0);
        CHECK(tol_dh.max().item<double>() < 1e-4 * (1 + ref.dh.abs().max().item<double>()));

        // The fused pass: the same loss through per-row gradients (a, c) handed over chunk by chunk; the gradient
        // is formed in the forward by the same formulas, so it meets the same bounds.
        std::vector<int64_t> firsts;
        auto fr = lm_head_fused_loss(h, w, sc.targets, o, [&](int64_t first, const at::Tensor& lp,
                                                              const at::Tensor& e) {
          firsts.push_back(first);
          CHECK(e.defined());
          CHECK_FALSE(lp.requires_grad());
          const int64_t n = lp.size(0);
          return std::make_pair(a.to(at::kFloat).narrow(0, first, n), c.to(at::kFloat).narrow(0, first, n));
        });
        CHECK(firsts == std::vector<int64_t>{0, 5, 10, 15});
        CHECK(fr.carrier.item<double>() == 0);
        CHECK(at::equal(fr.logp, r.logp.detach()));
        CHECK(at::equal(fr.entropy, r.entropy.detach()));
        auto gf = torch::autograd::grad({2.0 * fr.carrier}, {h, w});  // the backward scales by its incoming gradient
        CHECK(max_excess((gf[0].to(at::kDouble) / 2 - ref.dh).abs(), tol_dh) <= 0);
        CHECK(max_excess((gf[1].to(at::kDouble) / 2 - ref.dw).abs(), tol_dw) <= 0);
        // Without the entropy term (dL/dHs undefined) and with the weight frozen: dh alone, equal to the
        // recomputing backward's.
        auto hf = h.detach().clone().requires_grad_(true);
        auto fr2 = lm_head_fused_loss(hf, w.detach(), sc.targets, o, [&](int64_t first, const at::Tensor& lp,
                                                                         const at::Tensor&) {
          return std::make_pair(a.to(at::kFloat).narrow(0, first, lp.size(0)), at::Tensor());
        });
        auto gh = torch::autograd::grad({fr2.carrier}, {hf});
        auto r3 = lm_head_logprobs(hf, w.detach(), sc.targets, o);
        auto gh_ref = torch::autograd::grad({(a.to(at::kFloat) * r3.logp).sum()}, {hf});
        CHECK((gh[0] - gh_ref[0]).abs().max().item<double>() <= 1e-6 * gh_ref[0].abs().max().item<double>());
        CHECK(gh_ref[0].abs().max().item<double>() > 1e-3);

        // Entropy not requested / not in the loss: logp's gradient alone, unchanged by the entropy pass.
        auto r1 = lm_head_logprobs(h, w, sc.targets, o);  // (the first graph is spent)
        auto g_lp = torch::autograd::grad({(a.to(at::kFloat) * r1.logp).sum()}, {h, w});
        o.entropy = false;
        auto r2 = lm_head_logprobs(h, w, sc.targets, o);
        CHECK_FALSE(r2.entropy.defined());
        CHECK(at::equal(r2.logp, r.logp));
        auto g2 = torch::autograd::grad({(a.to(at::kFloat) * r2.logp).sum()}, {h, w});
        CHECK((g2[0] - g_lp[0]).abs().max().item<double>() < 1e-6);
        CHECK((g2[1] - g_lp[1]).abs().max().item<double>() < 1e-6);
      }
    }
  }
}

// bf16 working weights (fp32 masters elsewhere): the GEMM runs in bf16 with logits rounded to bf16
// (u_b = 2^-8 relative), everything after it in fp32; gradients come back in bf16. The same bounds as the fp32
// test with the logit error u_b |z| added, and the two bf16 roundings of dz and of each GEMM result.
TEST_CASE("lm_head_logprobs on bf16 weights: fp32 softmax and bf16 gradients", "[model][logprobs]") {
  const double ub = std::ldexp(1.0, -8);
  auto lm = CausalLM::from_args(small_args("qwen2"), 3, at::kCPU);
  auto sc = scored_positions(*lm);
  auto h = sc.hidden.to(at::kBFloat16).requires_grad_(true);                       // [N, H] bf16
  auto w = lm->lm_head_weight().detach().to(at::kBFloat16).requires_grad_(true);   // [V, H] bf16
  const int64_t N = h.size(0), V = w.size(0);
  LmHeadLogprobOptions o;
  o.chunk_rows = 4;
  auto r = lm_head_logprobs(h, w, sc.targets, o);
  CHECK(r.logp.scalar_type() == at::kFloat);
  auto g = torch::autograd::grad({r.logp.sum()}, {h, w});
  CHECK(g[0].scalar_type() == at::kBFloat16);
  CHECK(g[1].scalar_type() == at::kBFloat16);
  auto ones = at::ones({N}, kF64), zeros = at::zeros({N}, kF64);
  auto ref = reference(h.detach().to(at::kFloat), w.detach().to(at::kFloat), sc.targets, 1.0, ones, zeros);
  auto ah = h.detach().to(at::kDouble).abs(), aw = w.detach().to(at::kDouble).abs();
  const double zmax = at::matmul(ah, aw.t()).max().item<double>();
  const double eps = 2 * ub * zmax * 1.01 + (V + 2) * std::ldexp(1.0, -24) * (1 + zmax);
  CHECK((r.logp.to(at::kDouble) - ref.logp).abs().max().item<double>() <= eps);
  // dz = ([j = t] - p) errs by p (eps + 2^-23) before its bf16 rounding (ub |dz|); each GEMM output is rounded
  // to bf16 once more (ub |result|, bounded by ub (|dz| @ |W|)) after an fp32-accumulated dot product.
  auto dz_abs = ref.ds.abs();
  auto tol_dz = ref.p * (eps + std::ldexp(1.0, -23)) + ub * dz_abs;                    // [N, V]
  auto tol_dh = at::matmul(tol_dz, aw) + (ub + V * std::ldexp(1.0, -24)) * at::matmul(dz_abs + tol_dz, aw);
  auto tol_dw = at::matmul(tol_dz.t(), ah) + (2 * ub + N * std::ldexp(1.0, -24)) * at::matmul((dz_abs + tol_dz).t(), ah);
  CHECK(max_excess((g[0].to(at::kDouble) - ref.dh).abs(), tol_dh) <= 0);
  CHECK(max_excess((g[1].to(at::kDouble) - ref.dw).abs(), tol_dw) <= 0);
  CHECK(ref.dh.abs().max().item<double>() > 1e-3);  // the compared gradients are not ~0
  CHECK(ref.dw.abs().max().item<double>() > 1e-3);

  // The fused pass (the GRPO update's path) on the same bf16 weights: the same GEMM dtypes and dz formulas, so
  // the same bounds; bf16 gradients handed on through the carrier.
  auto fr = lm_head_fused_loss(h, w, sc.targets, o, [&](int64_t, const at::Tensor& lp, const at::Tensor&) {
    return std::make_pair(at::ones({lp.size(0)}, at::kFloat), at::Tensor());
  });
  CHECK(at::equal(fr.logp, r.logp.detach()));
  auto gf = torch::autograd::grad({fr.carrier}, {h, w});
  CHECK(gf[0].scalar_type() == at::kBFloat16);
  CHECK(gf[1].scalar_type() == at::kBFloat16);
  CHECK(max_excess((gf[0].to(at::kDouble) - ref.dh).abs(), tol_dh) <= 0);
  CHECK(max_excess((gf[1].to(at::kDouble) - ref.dw).abs(), tol_dw) <= 0);
  // A wrong per-token weight (2 instead of 1) is caught by these bounds.
  auto bad = lm_head_fused_loss(h, w, sc.targets, o, [&](int64_t, const at::Tensor& lp, const at::Tensor&) {
    return std::make_pair(at::full({lp.size(0)}, 2.0f), at::Tensor());
  });
  auto gb = torch::autograd::grad({bad.carrier}, {h, w});
  CHECK(max_excess((gb[0].to(at::kDouble) - ref.dh).abs(), tol_dh) > 0);
}

TEST_CASE("right padding without a mask and left padding with a mask give the same log-probs", "[model][logprobs]") {
  // Right-padded rows take SDPA's causal path (no mask); the same rows left-padded need the explicit mask path.
  for (const char* type : {"qwen2", "llama", "qwen3"}) {
    SECTION(type) {
      auto lm = CausalLM::from_args(small_args(type), 4, at::kCPU);
      torch::manual_seed(2);
      const std::vector<int64_t> lens{7, 3, 5};
      const int64_t T = 7, V = lm->args().vocab_size;
      auto seqs = at::randint(0, V, {3, T}, at::kLong);
      auto right = at::zeros({3, T}, at::kLong), left = at::zeros({3, T}, at::kLong);
      auto rmask = at::zeros({3, T}, at::kLong), lmask = at::zeros({3, T}, at::kLong);
      auto lpos = at::zeros({3, T}, at::kLong);
      for (int64_t b = 0; b < 3; ++b) {
        const int64_t n = lens[b], pad = T - n;
        right[b].narrow(0, 0, n).copy_(seqs[b].narrow(0, 0, n));
        rmask[b].narrow(0, 0, n).fill_(1);
        left[b].narrow(0, pad, n).copy_(seqs[b].narrow(0, 0, n));
        lmask[b].narrow(0, pad, n).fill_(1);
        lpos[b].narrow(0, pad, n).copy_(at::arange(n, at::kLong));
      }
      at::NoGradGuard ng;
      auto hr = lm->forward_hidden(right, at::Tensor(), rmask);  // [3, T, H]
      auto hl = lm->forward_hidden(left, lpos, lmask);           // [3, T, H]
      for (int64_t b = 0; b < 3; ++b) {
        const int64_t n = lens[b], pad = T - n;
        auto tgt = seqs[b].narrow(0, 1, n - 1);
        auto a = lm_head_logprobs(hr[b].narrow(0, 0, n - 1), lm->lm_head_weight(), tgt).logp;    // [n-1]
        auto c = lm_head_logprobs(hl[b].narrow(0, pad, n - 1), lm->lm_head_weight(), tgt).logp;  // [n-1]
        // Different kernels sum in different orders: fp32 rounding relative to the log-prob scale.
        CHECK((a - c).abs().max().item<double>() < 1e-5 * (1 + a.abs().max().item<double>()));
      }
      // And the rows agree with each scored alone (no padding at all).
      auto alone = lm->forward_hidden(seqs[1].narrow(0, 0, 3).unsqueeze(0), at::Tensor(), at::Tensor());  // [1, 3, H]
      CHECK((alone[0] - hr[1].narrow(0, 0, 3)).abs().max().item<double>() < 1e-5);
    }
  }
}

TEST_CASE("forward_hidden feeds the lm_head that forward applies", "[model][logprobs]") {
  for (const char* type : {"qwen2", "llama"}) {  // tied and untied
    SECTION(type) {
      auto lm = CausalLM::from_args(small_args(type), 6, at::kCPU);
      at::NoGradGuard ng;
      auto ids = at::randint(0, lm->args().vocab_size, {2, 5}, at::kLong);
      auto logits = lm->forward(ids, at::Tensor(), at::Tensor());  // [2, 5, V]
      auto h = lm->forward_hidden(ids, at::Tensor(), at::Tensor());  // [2, 5, H]
      CHECK((at::matmul(h, lm->lm_head_weight().t()) - logits).abs().max().item<double>() < 1e-5);
      const bool tied = std::string(type) == "qwen2";
      bool is_embed = lm->lm_head_weight().is_same(lm->named_parameters()[0].second);
      CHECK(is_embed == tied);
    }
  }
}

TEST_CASE("gradient checkpointing on right-padded rows (no mask) gives the same gradients", "[model][logprobs]") {
  auto lm = CausalLM::from_args(small_args("qwen3"), 5, at::kCPU);
  torch::manual_seed(9);
  auto ids = at::randint(0, lm->args().vocab_size, {2, 7}, at::kLong);
  auto mask = at::ones({2, 7}, at::kLong);
  mask[1].narrow(0, 4, 3).zero_();  // right padding: the causal path without a mask
  auto grads = [&](bool ckpt) {
    for (auto& p : lm->parameters()) p.mutable_grad() = at::Tensor();
    ForwardOptions o;
    o.gradient_checkpointing = ckpt;
    auto h = lm->forward_hidden(ids, at::Tensor(), mask, o);  // [2, 7, H]
    auto lp = lm_head_logprobs(h.narrow(1, 0, 6).reshape({12, h.size(2)}), lm->lm_head_weight(),
                               ids.narrow(1, 1, 6).reshape({12})).logp;  // [12]
    (lp * mask.narrow(1, 1, 6).reshape({12})).sum().backward();
    std::vector<at::Tensor> g;
    for (auto& p : lm->parameters()) g.push_back(p.grad().clone());
    return g;
  };
  auto a = grads(false), b = grads(true);
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].abs().sum().item<double>() > 0);
    CHECK((a[i] - b[i]).abs().max().item<double>() < 1e-6);
  }
}
