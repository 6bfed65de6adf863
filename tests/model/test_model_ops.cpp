// Model behaviour beyond parity: token_logprobs by hand, KV-cache decode == full forward, gradient
// checkpointing == plain backward, seeded from_args, unsupported config fields.
#include <ATen/ATen.h>
#include <torch/autograd.h>

#include <cmath>
#include <fstream>

#include "common/error.h"
#include "common/fs.h"
#include "model/causal_lm.h"
#include "model/lm_head_logprobs.h"
#include "model_fixtures.h"

using namespace rlvr::model;

namespace {

ModelArgs tiny_args(const std::string& type = "qwen2") {
  ModelArgs a;
  a.model_type = type;
  a.vocab_size = 97;
  a.hidden_size = 32;
  a.intermediate_size = 48;
  a.num_hidden_layers = 2;
  a.num_attention_heads = 4;
  a.num_key_value_heads = 2;
  a.attention_bias = type == "qwen2";
  a.qk_norm = type == "qwen3";
  a.tie_word_embeddings = true;
  return a;
}

// The simplest correct cache: concatenates keys per layer; bottom-right causal mask over all keys.
class ConcatCache : public KvCache {
 public:
  AttentionInputs append(int64_t layer, const at::Tensor& k_new, const at::Tensor& v_new) override {
    if (static_cast<int64_t>(k_.size()) <= layer) k_.resize(layer + 1), v_.resize(layer + 1);
    k_[layer] = k_[layer].defined() ? at::cat({k_[layer], k_new}, 2) : k_new;  // [B, Hkv, S, D]
    v_[layer] = v_[layer].defined() ? at::cat({v_[layer], v_new}, 2) : v_new;
    const int64_t S = k_[layer].size(2), T = k_new.size(2);
    auto q = at::arange(T, at::kLong).unsqueeze(1) + (S - T);  // [T, 1] absolute query positions
    auto kk = at::arange(S, at::kLong).unsqueeze(0);           // [1, S]
    auto mask = kk.le(q).view({1, 1, T, S}).expand({k_new.size(0), 1, T, S});  // [B, 1, T, S]
    return {k_[layer], v_[layer], mask};
  }

 private:
  std::vector<at::Tensor> k_, v_;
};

// Every parameter's gradient of sum(mask * log p(ids)) through forward, from cleared gradients.
std::vector<at::Tensor> logprob_grads(CausalLM& lm, const at::Tensor& ids, const at::Tensor& mask, bool ckpt,
                                      int64_t mlp_rows = 0) {
  for (auto& p : lm.parameters()) p.mutable_grad() = at::Tensor();
  ForwardOptions o;
  o.gradient_checkpointing = ckpt;
  o.mlp_chunk_rows = mlp_rows;
  auto logits = lm.forward(ids, at::Tensor(), mask, nullptr, o);
  (token_logprobs(logits, ids) * mask).sum().backward();
  std::vector<at::Tensor> g;
  for (auto& p : lm.parameters()) g.push_back(p.grad().clone());
  return g;
}

}  // namespace

TEST_CASE("token_logprobs by hand", "[model]") {
  // logits [0, 0, ln 2] -> softmax [1/4, 1/4, 1/2]; target 2 -> ln(1/2), target 0 -> ln(1/4).
  auto logits = at::tensor({0.0f, 0.0f, static_cast<float>(std::log(2.0))}).view({1, 1, 3}).repeat({1, 2, 1});
  auto targets = at::tensor({2L, 0L}).view({1, 2});
  auto lp = token_logprobs(logits, targets);  // [1, 2]
  CHECK(lp.scalar_type() == at::kFloat);
  CHECK(lp[0][0].item<double>() == Approx(std::log(0.5)).epsilon(1e-6));
  CHECK(lp[0][1].item<double>() == Approx(std::log(0.25)).epsilon(1e-6));
  CHECK_THROWS_AS(token_logprobs(logits, at::tensor({3L, 0L}).view({1, 2})), rlvr::Error);
}

TEST_CASE("token_logprobs matches log_softmax + gather, in value and gradient, for bf16 logits", "[model]") {
  at::manual_seed(3);
  auto x = (at::randn({2, 5, 40}) * 3).to(at::kBFloat16).requires_grad_(true);
  auto t = at::randint(0, 40, {2, 5}, at::kLong);
  auto lp = token_logprobs(x, t);
  auto ref = at::log_softmax(x.to(at::kFloat), -1).gather(-1, t.unsqueeze(-1)).squeeze(-1);
  CHECK((lp - ref).abs().max().item<double>() < 1e-6);
  auto g1 = torch::autograd::grad({lp.sum()}, {x})[0];
  auto g2 = torch::autograd::grad({ref.sum()}, {x})[0];
  CHECK((g1.to(at::kFloat) - g2.to(at::kFloat)).abs().max().item<double>() < 1e-6);
}

TEST_CASE("KV-cache decode gives the full-forward logits", "[model]") {
  for (const char* name : {"qwen2_tied", "llama3", "qwen3"}) {
    SECTION(name) {
      auto lm = CausalLM::from_pretrained(model_fixture_dir(name) / "hf", at::kCPU, at::kFloat);
      at::NoGradGuard ng;
      torch::manual_seed(1234);  // fixed ids: the check must not depend on the draw
      auto ids = at::randint(3, lm->args().vocab_size, {2, 9}, at::kLong);   // [2, 9]
      auto full = lm->forward(ids, at::Tensor(), at::Tensor());              // [2, 9, V]
      // 1e-5 absolute plus 1e-5 relative to the logit scale (fp32 sums in a different order).
      const double tol = 1e-5 * (1.0 + full.abs().max().item<double>());
      ConcatCache cache;
      auto pos = at::arange(9, at::kLong).expand({2, 9});
      auto pre = lm->forward(ids.narrow(1, 0, 5), pos.narrow(1, 0, 5), at::Tensor(), &cache);  // prefill 5
      CHECK((pre - full.narrow(1, 0, 5)).abs().max().item<double>() < tol);
      for (int64_t t = 5; t < 9; ++t) {
        auto step = lm->forward(ids.narrow(1, t, 1), pos.narrow(1, t, 1), at::Tensor(), &cache);  // [2, 1, V]
        CHECK((step - full.narrow(1, t, 1)).abs().max().item<double>() < tol);
      }
    }
  }
}

TEST_CASE("packed inference weights give the plain logits and are never read stale", "[model]") {
  for (const char* type : {"qwen2", "llama"}) {
    SECTION(type) {
      auto a = tiny_args(type);
      a.tie_word_embeddings = std::string(type) == "qwen2";  // both lm_head kinds
      auto lm = CausalLM::from_args(a, 5, at::kCPU);
      at::NoGradGuard ng;
      torch::manual_seed(7);
      auto ids = at::randint(0, a.vocab_size, {3, 6}, at::kLong);
      auto plain = lm->forward(ids, at::Tensor(), at::Tensor());
      const double tol = 1e-5 * (1.0 + plain.abs().max().item<double>());
      {
        PackedWeightsScope packed(*lm);
        CHECK((lm->forward(ids, at::Tensor(), at::Tensor()) - plain).abs().max().item<double>() < tol);
        // Logits at chosen positions only: [B, 1, V] equal to those rows of the full forward.
        ForwardOptions fo;
        fo.logit_positions = at::tensor({5L, 0L, 3L});
        auto picked = lm->forward(ids, at::Tensor(), at::Tensor(), nullptr, fo);
        REQUIRE(picked.sizes() == at::IntArrayRef({3, 1, a.vocab_size}));
        for (int64_t b = 0; b < 3; ++b) {
          const int64_t t = fo.logit_positions[b].item<int64_t>();
          CHECK((picked[b][0] - plain[b][t]).abs().max().item<double>() < tol);
        }
        // An in-place update (what the optimizer does) bumps the version: the stale packed copy is not used.
        for (auto& p : lm->parameters()) p.mul_(1.5);
        auto changed = lm->forward(ids, at::Tensor(), at::Tensor());
        CHECK((changed - plain).abs().max().item<double>() > 1e-3);
        lm->unpack_weights();
        auto reference = lm->forward(ids, at::Tensor(), at::Tensor());
        CHECK((changed - reference).abs().max().item<double>() < 1e-5 * (1.0 + reference.abs().max().item<double>()));
      }
    }
  }
}

TEST_CASE("gradient checkpointing gives the same gradients", "[model]") {
  auto lm = CausalLM::from_args(tiny_args("qwen3"), 5, at::kCPU);
  auto ids = at::randint(0, 97, {2, 7}, at::kLong);
  auto mask = at::ones({2, 7}, at::kLong);
  mask[1].narrow(0, 0, 2).zero_();
  auto a = logprob_grads(*lm, ids, mask, false), b = logprob_grads(*lm, ids, mask, true);
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].abs().sum().item<double>() > 0);
    CHECK((a[i] - b[i]).abs().max().item<double>() < 1e-6);
  }
}

TEST_CASE("the checkpointed backward's MLP chunks give the gradients of the plain backward", "[model]") {
  // The checkpointed backward recomputes the attention half with a graph and the MLP half per chunk of tokens
  // (down_proj's gradients by hand); here 3-token chunks (5 per micro-batch, the last one short), every
  // architecture, right padding (no mask) and left padding (a mask). fp32: the chunked weight-gradient sums differ
  // from the plain ones in summation order only (~1e-7 relative here), far below the 1e-5 allowed.
  for (const char* type : {"qwen2", "llama", "qwen3"}) {
    auto args = tiny_args(type);
    args.tie_word_embeddings = std::string(type) != "llama";
    auto lm = CausalLM::from_args(args, 9, at::kCPU);
    for (bool left : {false, true}) {
      CAPTURE(type, left);
      auto ids = at::randint(0, 97, {2, 7}, at::kLong);
      auto mask = at::ones({2, 7}, at::kLong);
      mask[1].narrow(0, left ? 0 : 5, 2).zero_();
      auto plain = logprob_grads(*lm, ids, mask, false), chunked = logprob_grads(*lm, ids, mask, true, 3),
           whole = logprob_grads(*lm, ids, mask, true);
      REQUIRE(plain.size() == chunked.size());
      for (size_t i = 0; i < plain.size(); ++i) {
        CAPTURE(i);
        const double scale = plain[i].abs().max().item<double>();
        CHECK(scale > 0);
        CHECK((plain[i] - chunked[i]).abs().max().item<double>() <= 1e-5 * scale);
        CHECK((plain[i] - whole[i]).abs().max().item<double>() <= 1e-5 * scale);
      }
    }
  }
}

TEST_CASE("the checkpointed backward's MLP chunks in bf16 give the fp32 gradients to bf16 rounding", "[model]") {
  // bf16 working weights (model.dtype bf16) take the chunked backward's generic path (SwiGLU's backward in ATen
  // ops, the GEMMs in bf16, the weights' gradients summed in fp32). Against the same weights' fp32 gradients;
  // the plain bf16 backward (autograd through the whole layer) beside it shows what bf16 rounding alone costs:
  // 1.2-3.6% of each tensor's largest gradient here, the chunked one 0.69-1.28x that over 8 seeds x 3 types.
  for (const char* type : {"qwen2", "llama", "qwen3"}) {
    auto args = tiny_args(type);
    auto ref = CausalLM::from_args(args, 11, at::kCPU), lm = CausalLM::from_args(args, 11, at::kCPU);
    lm->module().to(at::kBFloat16);
    CAPTURE(type);
    auto ids = at::randint(0, 97, {2, 7}, at::kLong);
    auto mask = at::ones({2, 7}, at::kLong);
    mask[1].narrow(0, 5, 2).zero_();
    auto exact = logprob_grads(*ref, ids, mask, false), plain = logprob_grads(*lm, ids, mask, false),
         chunked = logprob_grads(*lm, ids, mask, true, 3);
    double worst_plain = 0, worst_chunked = 0;
    for (size_t i = 0; i < exact.size(); ++i) {
      CAPTURE(i);
      REQUIRE(chunked[i].scalar_type() == at::kBFloat16);
      const double scale = exact[i].abs().max().item<double>();
      CHECK(scale > 0);
      worst_plain = std::max(worst_plain, (plain[i].to(at::kFloat) - exact[i]).abs().max().item<double>() / scale);
      worst_chunked =
          std::max(worst_chunked, (chunked[i].to(at::kFloat) - exact[i]).abs().max().item<double>() / scale);
    }
    CAPTURE(worst_plain, worst_chunked);
    CHECK(worst_plain > 0);  // bf16 rounding shows
    CHECK(worst_chunked <= 2 * worst_plain);
  }
}

TEST_CASE("a forward without grad mode over MLP chunks gives the logits of the whole MLP", "[model]") {
  // Without grad mode every MLP runs over chunks of tokens (here 3: 5 chunks of 14 tokens, the last one short);
  // against the whole MLP with grad mode on (the training forward), every architecture, right and left padding,
  // and a KV-cache prefill. fp32: only the GEMMs' row blocking differs, which 1e-5 of the largest logit allows.
  for (const char* type : {"qwen2", "llama", "qwen3"}) {
    auto lm = CausalLM::from_args(tiny_args(type), 5, at::kCPU);
    for (bool left : {false, true}) {
      CAPTURE(type, left);
      auto ids = at::randint(0, 97, {2, 7}, at::kLong);
      auto mask = at::ones({2, 7}, at::kLong);
      mask[1].narrow(0, left ? 0 : 5, 2).zero_();
      auto whole = lm->forward(ids, at::Tensor(), mask).detach();
      REQUIRE(whole.requires_grad() == false);
      const double scale = whole.abs().max().item<double>();
      CHECK(scale > 0);
      at::NoGradGuard ng;
      ForwardOptions o;
      o.mlp_chunk_rows = 3;
      auto chunked = lm->forward(ids, at::Tensor(), mask, nullptr, o);
      CHECK((chunked - whole).abs().max().item<double>() <= 1e-5 * scale);
      if (!left) {  // a prefill into a cache: the same chunks with the cache's mask
        ConcatCache cache;
        auto pre = lm->forward(ids, at::Tensor(), at::Tensor(), &cache, o);
        CHECK((pre - whole).abs().max().item<double>() <= 1e-5 * scale);
      }
    }
  }
}

TEST_CASE("the tied lm_head alias gives the embedding the gradient of both uses", "[model]") {
  // ForwardOptions::head_weight: for tied embeddings the lm_head scores with an alias whose gradient and the
  // lookup's meet in one node (added in place). Against the plain route (lm_head_weight(), autograd adding two
  // dense gradients): two accumulating backwards (the second adds into an existing .grad), ids with repeats (the
  // lookup's rows are summed per distinct id), with and without checkpointing.
  for (bool tied : {true, false}) {
    auto args = tiny_args("qwen2");
    args.tie_word_embeddings = tied;
    auto lm = CausalLM::from_args(args, 3, at::kCPU);
    auto ids = at::randint(0, 9, {2, 6}, at::kLong);  // 12 tokens over 9 ids: repeats
    auto mask = at::ones({2, 6}, at::kLong);
    for (bool ckpt : {false, true}) {
      CAPTURE(tied, ckpt);
      // alias: 0 the plain route; 1 the alias; 2 the alias asked for but unused (the lookup's dense gradient).
      auto grads = [&](int alias) {
        for (auto& p : lm->parameters()) p.mutable_grad() = at::Tensor();
        for (int pass = 0; pass < 2; ++pass) {
          ForwardOptions o;
          o.gradient_checkpointing = ckpt;
          at::Tensor w;
          if (alias > 0) o.head_weight = &w;
          auto h = lm->forward_hidden(ids, at::Tensor(), mask, o).reshape({12, args.hidden_size});
          if (alias != 1) w = lm->lm_head_weight();
          CHECK(at::equal(w, lm->lm_head_weight()));
          auto lp = lm_head_logprobs(h, w, ids.reshape({12}).roll(1)).logp;
          (lp * at::arange(1, 13, at::kFloat)).sum().backward();
        }
        std::vector<at::Tensor> g;
        for (auto& p : lm->parameters()) g.push_back(p.grad().clone());
        return g;
      };
      auto plain = grads(0), joined = grads(1), unused = grads(2);
      for (size_t i = 0; i < plain.size(); ++i) {
        CAPTURE(i);
        const double scale = plain[i].abs().max().item<double>();
        CHECK(scale > 0);
        CHECK((plain[i] - joined[i]).abs().max().item<double>() <= 1e-6 * scale);
        CHECK((plain[i] - unused[i]).abs().max().item<double>() <= 1e-6 * scale);
      }
    }
  }
}

TEST_CASE("from_args is deterministic under a seed and uses HF names", "[model]") {
  auto a = CausalLM::from_args(tiny_args(), 42, at::kCPU);
  auto b = CausalLM::from_args(tiny_args(), 42, at::kCPU);
  auto c = CausalLM::from_args(tiny_args(), 43, at::kCPU);
  auto na = a->named_parameters(), nb = b->named_parameters(), nc = c->named_parameters();
  REQUIRE(na.size() == nb.size());
  bool differs = false;
  for (size_t i = 0; i < na.size(); ++i) {
    CHECK(na[i].first == nb[i].first);
    CHECK(at::equal(na[i].second, nb[i].second));
    differs = differs || !at::equal(na[i].second, nc[i].second);
  }
  CHECK(differs);
  CHECK(na[0].first == "model.embed_tokens.weight");
  bool has_q = false, has_lm_head = false;
  for (auto& [n, t] : na) {
    has_q = has_q || n == "model.layers.0.self_attn.q_proj.weight";
    has_lm_head = has_lm_head || n == "lm_head.weight";
  }
  CHECK(has_q);
  CHECK_FALSE(has_lm_head);  // tied
  at::NoGradGuard ng;
  auto logits = a->forward(at::randint(0, 97, {1, 4}, at::kLong), at::Tensor(), at::Tensor());
  CHECK(logits.isfinite().all().item<bool>());
}

TEST_CASE("unsupported config fields are errors naming them", "[model]") {
  auto dir = model_scratch_dir("config");
  auto base = rlvr::read_file(model_fixture_dir("qwen2_tied") / "hf" / "config.json");
  auto check = [&](const std::string& from, const std::string& to, const std::string& needle) {
    auto s = base;
    auto at_ = s.find(from);
    REQUIRE(at_ != std::string::npos);
    s.replace(at_, from.size(), to);
    std::ofstream(dir / "config.json") << s;
    try {
      ModelArgs::from_json_file(dir / "config.json");
      FAIL("no error for " << to);
    } catch (const rlvr::Error& e) {
      INFO(e.what());
      CHECK(std::string(e.what()).find(needle) != std::string::npos);
    }
  };
  check("\"model_type\": \"qwen2\"", "\"model_type\": \"mistral\"", "mistral");
  check("\"use_sliding_window\": false", "\"use_sliding_window\": true", "use_sliding_window");
  check("\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\"", "gelu");
  check("\"rope_type\": \"default\"", "\"rope_type\": \"yarn\"", "yarn");
  check("\"vocab_size\": 256", "\"vocab_size\": \"x\"", "vocab_size");
  std::ofstream(dir / "config.json") << "{not json";
  CHECK_THROWS_AS(ModelArgs::from_json_file(dir / "config.json"), rlvr::Error);
}
