#include "trainer/batch.h"

#include <ATen/ATen.h>

#include "common/error.h"
#include "model/lm_head_logprobs.h"

namespace rlvr::trainer {

PackedBatch pack_batch(const std::vector<const std::vector<int64_t>*>& prompts,
                       const std::vector<const std::vector<int64_t>*>& responses, int64_t pad_id,
                       const at::Device& device) {
  RLVR_CHECK(prompts.size() == responses.size() && !prompts.empty(), "pack_batch: {} prompts vs {} responses",
             prompts.size(), responses.size());
  const int64_t B = static_cast<int64_t>(prompts.size());
  int64_t T = 1, L = 1;
  for (int64_t i = 0; i < B; ++i) {
    RLVR_CHECK(!prompts[i]->empty(), "pack_batch: row {} has an empty prompt", i);
    T = std::max<int64_t>(T, prompts[i]->size() + responses[i]->size());
    L = std::max<int64_t>(L, responses[i]->size());
  }
  auto tokens = at::full({B, T}, pad_id, at::kLong);
  auto positions = at::zeros({B, T}, at::kLong);
  auto attn = at::zeros({B, T}, at::kLong);
  auto rindex = at::zeros({B, L}, at::kLong);
  auto rmask = at::zeros({B, L}, at::kFloat);
  auto rtok = at::zeros({B, L}, at::kLong);
  auto tk = tokens.accessor<int64_t, 2>();
  auto ps = positions.accessor<int64_t, 2>();
  auto am = attn.accessor<int64_t, 2>();
  auto ri = rindex.accessor<int64_t, 2>();
  auto rm = rmask.accessor<float, 2>();
  auto rt = rtok.accessor<int64_t, 2>();
  for (int64_t i = 0; i < B; ++i) {
    const auto& p = *prompts[i];
    const auto& r = *responses[i];
    const int64_t P = p.size(), R = r.size();
    for (int64_t t = 0; t < P + R; ++t) {
      tk[i][t] = t < P ? p[t] : r[t - P];
      ps[i][t] = t;
      am[i][t] = 1;
    }
    for (int64_t j = 0; j < R; ++j) {
      ri[i][j] = P - 1 + j;  // the prediction at position P-1+j is of token P+j (response token j)
      rm[i][j] = 1.0f;
      rt[i][j] = r[j];
    }
  }
  return {tokens.to(device), positions.to(device), attn.to(device), rindex.to(device), rmask.to(device),
          rtok.to(device)};
}

ResponseLogprobs response_logprobs(model::CausalLM& model, const PackedBatch& b, double temperature,
                                   bool want_entropy, bool grad_entropy, bool gradient_checkpointing) {
  model::ForwardOptions fo;
  fo.gradient_checkpointing = gradient_checkpointing;
  auto h = model.forward_hidden(b.tokens, b.positions, b.attn_mask, fo);  // [B, T, H]
  const int64_t B = h.size(0), T = h.size(1), Hd = h.size(2), L = b.resp_index.size(1);
  // Only real response tokens reach the lm_head: N = their count, rows picked from the flattened batch.
  auto sel = b.resp_mask.reshape({B * L}).gt(0).nonzero().squeeze(1);  // [N] into [B * L]
  auto row_base = at::arange(B, b.resp_index.options()).mul_(T).unsqueeze(1);  // [B, 1]
  auto src = (b.resp_index + row_base).reshape({B * L}).index_select(0, sel);  // [N] into [B * T]
  auto hs = h.reshape({B * T, Hd}).index_select(0, src);                        // [N, H]
  auto tgt = b.resp_tokens.reshape({B * L}).index_select(0, sel);               // [N]
  model::LmHeadLogprobOptions o;
  o.temperature = temperature > 0 ? temperature : 1.0;  // greedy rollouts are scored at temperature 1
  o.entropy = want_entropy;
  auto r = model::lm_head_logprobs(hs, model.lm_head_weight(), tgt, o);  // [N] fp32
  auto zeros = at::zeros({B * L}, r.logp.options());                      // [B * L] fp32
  ResponseLogprobs out;
  out.logp = zeros.index_copy(0, sel, r.logp).view({B, L});  // [B, L], 0 at padding
  if (want_entropy) {
    auto e = grad_entropy ? r.entropy : r.entropy.detach();
    out.entropy = zeros.index_copy(0, sel, e).view({B, L});  // [B, L]
  }
  return out;
}

}  // namespace rlvr::trainer
