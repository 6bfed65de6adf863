#include "trainer/batch.h"

#include <ATen/ATen.h>

#include "common/error.h"
#include "model/lm_head_logprobs.h"

namespace rlvr::trainer {

namespace {

// The host tensors of a PackedBatch, written while packing (one writer for every packing) and moved to the
// device once.
struct HostPack {
  at::Tensor tokens, positions, attn, rrow, rindex, rmask, rtok;
  at::TensorAccessor<int64_t, 2> tk, ps, am, ri, rt;
  at::TensorAccessor<float, 2> rm;
  at::TensorAccessor<int64_t, 1> rr;
  int64_t real = 0;  // tokens written (the ones of attn)

  // R packed rows of T tokens holding B completions of at most L response tokens; resp_row defaults to b.
  HostPack(int64_t R, int64_t T, int64_t B, int64_t L, int64_t pad_id)
      : tokens(at::full({R, T}, pad_id, at::kLong)),
        positions(at::zeros({R, T}, at::kLong)),
        attn(at::zeros({R, T}, at::kLong)),
        rrow(at::arange(B, at::kLong)),
        rindex(at::zeros({B, L}, at::kLong)),
        rmask(at::zeros({B, L}, at::kFloat)),
        rtok(at::zeros({B, L}, at::kLong)),
        tk(tokens.accessor<int64_t, 2>()),
        ps(positions.accessor<int64_t, 2>()),
        am(attn.accessor<int64_t, 2>()),
        ri(rindex.accessor<int64_t, 2>()),
        rt(rtok.accessor<int64_t, 2>()),
        rm(rmask.accessor<float, 2>()),
        rr(rrow.accessor<int64_t, 1>()) {}

  // Token `id` at column t of row r, at position `pos`.
  void token(int64_t r, int64_t t, int64_t id, int64_t pos) {
    tk[r][t] = id, ps[r][t] = pos, am[r][t] = 1;
    ++real;
  }
  // Response token j of completion b is `id`, predicted at column `col` of its row.
  void response(int64_t b, int64_t j, int64_t id, int64_t col) { ri[b][j] = col, rm[b][j] = 1.0f, rt[b][j] = id; }

  PackedBatch to(const at::Device& device, const at::Tensor& block_mask = {}) const {
    PackedBatch out;
    out.tokens = tokens.to(device);
    out.positions = positions.to(device);
    out.attn_mask = attn.to(device);
    if (block_mask.defined()) out.block_mask = block_mask.to(device);
    out.resp_row = rrow.to(device);
    out.resp_index = rindex.to(device);
    out.resp_mask = rmask.to(device);
    out.resp_tokens = rtok.to(device);
    out.real_tokens = real;
    return out;
  }
};

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
  HostPack h(B, T, B, L, pad_id);
  for (int64_t i = 0; i < B; ++i) {
    const auto& p = *prompts[i];
    const auto& r = *responses[i];
    const int64_t P = p.size(), R = r.size();
    for (int64_t t = 0; t < P + R; ++t) h.token(i, t, t < P ? p[t] : r[t - P], t);
    // The prediction at position P-1+j is of token P+j (response token j).
    for (int64_t j = 0; j < R; ++j) h.response(i, j, r[j], P - 1 + j);
  }
  return h.to(device);
}

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
  HostPack h(R, T, B, L, pad_id);
  auto mask = at::zeros({R, 1, T, T}, at::kBool);
  auto tril = [](int64_t n) { return at::ones({n, n}, at::kBool).tril(); };
  for (int64_t r = 0; r < R; ++r) {
    const auto& p = *prompts[rows[r].front()];
    const int64_t P = static_cast<int64_t>(p.size());
    auto mr = mask[r][0];  // [T, T]
    for (int64_t t = 0; t < P; ++t) h.token(r, t, p[t], t);
    mr.narrow(0, 0, P).narrow(1, 0, P).copy_(tril(P));  // the prompt: causal among itself
    int64_t s = P;  // where the next response starts in the row
    for (auto b : rows[r]) {
      const auto& resp = *responses[b];
      const int64_t n = static_cast<int64_t>(resp.size());
      h.rr[b] = r;
      for (int64_t j = 0; j < n; ++j) {
        h.token(r, s + j, resp[j], P + j);
        h.response(b, j, resp[j], j == 0 ? P - 1 : s + j - 1);  // predicted at the previous token of ITS sequence
      }
      if (n > 0) {
        mr.narrow(0, s, n).narrow(1, 0, P).fill_(true);            // the response sees the whole prompt
        mr.narrow(0, s, n).narrow(1, s, n).copy_(tril(n));         // and its own earlier tokens, never a sibling's
      }
      s += n;
    }
    for (int64_t t = s; t < T; ++t) mr[t][t].fill_(true);  // padding sees itself (no all-false row: SDPA gives NaN)
  }
  return h.to(device, mask);
}

at::Tensor ScoredTokens::scatter(const at::Tensor& rows) const {
  return at::zeros({B * L}, rows.options()).index_copy(0, index, rows).view({B, L});
}

ScoredTokens scored_tokens(model::CausalLM& model, const PackedBatch& b, bool gradient_checkpointing) {
  model::ForwardOptions fo;
  fo.gradient_checkpointing = gradient_checkpointing;
  fo.block_mask = b.block_mask;
  ScoredTokens st;
  fo.head_weight = &st.head_weight;
  auto h = model.forward_hidden(b.tokens, b.positions, b.attn_mask, fo);  // [R, T, H]
  const int64_t R = h.size(0), T = h.size(1), Hd = h.size(2);
  st.B = b.resp_index.size(0), st.L = b.resp_index.size(1);
  const int64_t BL = st.B * st.L;
  // Only real response tokens reach the lm_head: N = their count, rows picked from the flattened batch.
  st.index = b.resp_mask.reshape({BL}).gt(0).nonzero().squeeze(1);                // [N] into [B * L]
  auto row_base = b.resp_row.mul(T).unsqueeze(1);                                 // [B, 1]
  auto src = (b.resp_index + row_base).reshape({BL}).index_select(0, st.index);   // [N] into [R * T]
  st.hidden = h.reshape({R * T, Hd}).index_select(0, src);                        // [N, H]
  st.target = b.resp_tokens.reshape({BL}).index_select(0, st.index);              // [N]
  return st;
}

model::LmHeadLogprobOptions response_head_options(double temperature, bool want_entropy) {
  model::LmHeadLogprobOptions o;
  o.temperature = temperature > 0 ? temperature : 1.0;  // greedy rollouts are scored at temperature 1
  o.entropy = want_entropy;
  return o;
}

ResponseLogprobs response_logprobs(model::CausalLM& model, const PackedBatch& b, double temperature,
                                   bool want_entropy, bool grad_entropy, bool gradient_checkpointing) {
  auto st = scored_tokens(model, b, gradient_checkpointing);
  auto r = model::lm_head_logprobs(st.hidden, st.head_weight, st.target,
                                   response_head_options(temperature, want_entropy));
  ResponseLogprobs out;
  out.logp = st.scatter(r.logp);  // [B, L], 0 at padding
  if (want_entropy) out.entropy = st.scatter(grad_entropy ? r.entropy : r.entropy.detach());  // [B, L]
  return out;
}

}  // namespace rlvr::trainer
