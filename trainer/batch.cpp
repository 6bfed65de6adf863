#include "trainer/batch.h"

#include <ATen/ATen.h>

#include "common/error.h"
#include "trainer/policy_loss.h"

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
  auto logits = model.forward(b.tokens, b.positions, b.attn_mask, nullptr, fo);  // [B, T, V]
  const int64_t T = logits.size(1);
  auto pred = logits.narrow(1, 0, T - 1).to(at::kFloat);  // [B, T-1, V] fp32 before the temperature, as the sampler
  if (temperature > 0 && temperature != 1.0) pred = pred / temperature;
  auto targets = b.tokens.narrow(1, 1, T - 1);                                    // [B, T-1]
  auto all_lp = model::token_logprobs(pred, targets);                             // [B, T-1] fp32
  ResponseLogprobs out;
  out.logp = all_lp.gather(1, b.resp_index) * b.resp_mask;                        // [B, L]
  if (want_entropy) {
    // Entropy only at response positions: gather those rows of the logits first ([B, L, V]).
    auto idx = b.resp_index.unsqueeze(-1).expand({-1, -1, pred.size(2)});
    auto rows = pred.gather(1, idx);
    if (!grad_entropy) rows = rows.detach();
    out.entropy = token_entropy(rows) * b.resp_mask;                               // [B, L]
  }
  return out;
}

}  // namespace rlvr::trainer
