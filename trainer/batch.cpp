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
  PackedBatch out;
  out.tokens = tokens.to(device);
  out.positions = positions.to(device);
  out.attn_mask = attn.to(device);
  out.resp_row = at::arange(B, at::kLong).to(device);
  out.resp_index = rindex.to(device);
  out.resp_mask = rmask.to(device);
  out.resp_tokens = rtok.to(device);
  return out;
}

namespace {

// Rows of distinct prompts (by content, in order of first appearance) and, per row, its completions.
std::vector<std::vector<int64_t>> rows_by_prompt(const std::vector<const std::vector<int64_t>*>& prompts) {
  std::vector<std::vector<int64_t>> rows;
  std::vector<const std::vector<int64_t>*> keys;
  for (size_t i = 0; i < prompts.size(); ++i) {
    size_t r = 0;
    while (r < keys.size() && keys[r] != prompts[i] && *keys[r] != *prompts[i]) ++r;
    if (r == keys.size()) keys.push_back(prompts[i]), rows.emplace_back();
    rows[r].push_back(static_cast<int64_t>(i));
  }
  return rows;
}

}  // namespace

int64_t shared_prompt_tokens(const std::vector<const std::vector<int64_t>*>& prompts,
                             const std::vector<const std::vector<int64_t>*>& responses) {
  int64_t n = 0;
  for (const auto& row : rows_by_prompt(prompts)) {
    n += static_cast<int64_t>(prompts[row.front()]->size());
    for (auto b : row) n += static_cast<int64_t>(responses[b]->size());
  }
  return n;
}

PackedBatch pack_shared_prompts(const std::vector<const std::vector<int64_t>*>& prompts,
                                const std::vector<const std::vector<int64_t>*>& responses, int64_t pad_id,
                                const at::Device& device) {
  RLVR_CHECK(prompts.size() == responses.size() && !prompts.empty(), "pack_shared_prompts: {} prompts vs {} responses",
             prompts.size(), responses.size());
  const int64_t B = static_cast<int64_t>(prompts.size());
  const auto rows = rows_by_prompt(prompts);
  const int64_t R = static_cast<int64_t>(rows.size());
  int64_t T = 1, L = 1;
  for (const auto& row : rows) {
    RLVR_CHECK(!prompts[row.front()]->empty(), "pack_shared_prompts: completion {} has an empty prompt", row.front());
    int64_t len = static_cast<int64_t>(prompts[row.front()]->size());
    for (auto b : row) len += static_cast<int64_t>(responses[b]->size()), L = std::max<int64_t>(L, responses[b]->size());
    T = std::max(T, len);
  }
  auto tokens = at::full({R, T}, pad_id, at::kLong);
  auto positions = at::zeros({R, T}, at::kLong);
  auto attn = at::zeros({R, T}, at::kLong);
  auto mask = at::zeros({R, 1, T, T}, at::kBool);
  auto rrow = at::zeros({B}, at::kLong);
  auto rindex = at::zeros({B, L}, at::kLong);
  auto rmask = at::zeros({B, L}, at::kFloat);
  auto rtok = at::zeros({B, L}, at::kLong);
  auto tk = tokens.accessor<int64_t, 2>();
  auto ps = positions.accessor<int64_t, 2>();
  auto am = attn.accessor<int64_t, 2>();
  auto rr = rrow.accessor<int64_t, 1>();
  auto ri = rindex.accessor<int64_t, 2>();
  auto rm = rmask.accessor<float, 2>();
  auto rt = rtok.accessor<int64_t, 2>();
  auto tril = [](int64_t n) { return at::ones({n, n}, at::kBool).tril(); };
  for (int64_t r = 0; r < R; ++r) {
    const auto& p = *prompts[rows[r].front()];
    const int64_t P = static_cast<int64_t>(p.size());
    auto mr = mask[r][0];  // [T, T]
    for (int64_t t = 0; t < P; ++t) tk[r][t] = p[t], ps[r][t] = t, am[r][t] = 1;
    mr.narrow(0, 0, P).narrow(1, 0, P).copy_(tril(P));  // the prompt: causal among itself
    int64_t s = P;  // where the next response starts in the row
    for (auto b : rows[r]) {
      const auto& resp = *responses[b];
      const int64_t n = static_cast<int64_t>(resp.size());
      rr[b] = r;
      for (int64_t j = 0; j < n; ++j) {
        tk[r][s + j] = resp[j], ps[r][s + j] = P + j, am[r][s + j] = 1;
        ri[b][j] = j == 0 ? P - 1 : s + j - 1;  // token j is predicted at the previous token of ITS sequence
        rm[b][j] = 1.0f;
        rt[b][j] = resp[j];
      }
      if (n > 0) {
        mr.narrow(0, s, n).narrow(1, 0, P).fill_(true);            // the response sees the whole prompt
        mr.narrow(0, s, n).narrow(1, s, n).copy_(tril(n));         // and its own earlier tokens, never a sibling's
      }
      s += n;
    }
    for (int64_t t = s; t < T; ++t) mr[t][t].fill_(true);  // padding sees itself (no all-false row: SDPA gives NaN)
  }
  PackedBatch out;
  out.tokens = tokens.to(device);
  out.positions = positions.to(device);
  out.attn_mask = attn.to(device);
  out.block_mask = mask.to(device);
  out.resp_row = rrow.to(device);
  out.resp_index = rindex.to(device);
  out.resp_mask = rmask.to(device);
  out.resp_tokens = rtok.to(device);
  return out;
}

ResponseLogprobs response_logprobs(model::CausalLM& model, const PackedBatch& b, double temperature,
                                   bool want_entropy, bool grad_entropy, bool gradient_checkpointing) {
  model::ForwardOptions fo;
  fo.gradient_checkpointing = gradient_checkpointing;
  fo.block_mask = b.block_mask;
  auto h = model.forward_hidden(b.tokens, b.positions, b.attn_mask, fo);  // [R, T, H]
  const int64_t R = h.size(0), T = h.size(1), Hd = h.size(2);
  const int64_t B = b.resp_index.size(0), L = b.resp_index.size(1);
  // Only real response tokens reach the lm_head: N = their count, rows picked from the flattened batch.
  auto sel = b.resp_mask.reshape({B * L}).gt(0).nonzero().squeeze(1);  // [N] into [B * L]
  auto row_base = b.resp_row.mul(T).unsqueeze(1);                         // [B, 1]
  auto src = (b.resp_index + row_base).reshape({B * L}).index_select(0, sel);  // [N] into [R * T]
  auto hs = h.reshape({R * T, Hd}).index_select(0, src);                        // [N, H]
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
