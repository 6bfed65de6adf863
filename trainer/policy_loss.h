// The GRPO/PPO policy loss on one micro-batch: clipped surrogate (clip-higher, dual clip), KL to a frozen
// reference (k1/k2/k3) in the loss or as a reward penalty, entropy bonus, and the loss aggregation that is
// normalised over the GLOBAL batch so that micro-batching and data parallelism do not change the update.
// Does not compute log-probs from a model (the caller gathers logp [B, L] from its forward pass).
// Legend: B = sequences in the micro-batch, L = response (completion) length, V = vocabulary.
#pragma once
#include <map>
#include <string>

#include <torch/torch.h>

namespace rlvr {
struct AlgorithmConfig;
struct RolloutConfig;
}

namespace rlvr::trainer {

// algorithm.loss_agg (verl loss_agg_mode names; TRL loss_type in brackets).
enum class LossAgg {
  token_mean,               // sum over all valid tokens / total_tokens           (TRL dapo, bnpo per batch)
  seq_mean_token_mean,      // sum_i [ sum_t l_it / n_i ] / total_seqs              (TRL grpo, original GRPO)
  seq_mean_token_sum_norm,  // sum over all valid tokens / (total_seqs * norm_len)  (TRL dr_grpo, Dr. GRPO)
};
// algorithm.kl_estimator. With lr = log(p_ref / p) = ref_logp - logp per sampled token (Schulman's
// estimators of KL(pi || pi_ref) under samples from pi; verl kl_penalty):
enum class KlEstimator {
  k1,  // -lr = logp - ref_logp                          (verl "kl"/"k1"; unbiased, high variance, can be < 0)
  k2,  // 0.5 * lr^2                                     (verl "mse"/"k2")
  k3,  // exp(lr) - 1 - lr, lr clamped to [-20, 20], result clamped to [-10, 10]  (verl "low_var_kl"/"k3")
};

LossAgg parse_loss_agg(const std::string& name);          // throws ConfigError listing the known names
KlEstimator parse_kl_estimator(const std::string& name);  // accepts k1|k2|k3 and verl aliases kl|mse|low_var_kl
const char* to_string(LossAgg a);
const char* to_string(KlEstimator k);

// The normalisers of one optimizer step, summed over ALL micro-batches of the mini-batch and ALL ranks.
// Build it with local_norm_counts() per micro-batch, sum (all-reduce) the counts, then set norm_len.
// Every aggregation divides the micro-batch's token sums by these constants only, so
//   sum over micro-batches and ranks of policy_loss(...).loss == the loss of the whole batch at once,
// and so are the gradients, whatever the split. Consequences for the loop: accumulate micro-batch
// gradients by plain backward() (no 1/num_micro scaling) and all-reduce gradients across ranks with SUM
// (not AVG: the world size is already inside total_tokens / total_seqs).
struct GlobalNorm {
  double total_tokens = 0;  // valid (mask != 0) response tokens            (token_mean)
  double total_seqs = 0;    // sequences with at least one valid token      (seq_mean_*)
  double norm_len = 0;      // the constant of seq_mean_token_sum_norm (algorithm.loss_norm_len, 0 there ->
                            // rollout.max_new_tokens); must stay fixed over training to mean anything
  // Sums the counts (total_tokens, total_seqs) of another micro-batch; keeps norm_len.
  GlobalNorm& operator+=(const GlobalNorm& o) {
    total_tokens += o.total_tokens;
    total_seqs += o.total_seqs;
    return *this;
  }
};
// Counts of one micro-batch: {valid tokens, sequences with >= 1 valid token}. mask: [B, L] (bool/float).
// Syncs with the device (.item()); call it once per micro-batch when building the batch plan.
GlobalNorm local_norm_counts(const torch::Tensor& mask);

struct PolicyLossConfig {
  double clip_low = 0.2;       // ratio clipped below at 1 - clip_low   (verl clip_ratio_low, TRL epsilon)
  double clip_high = 0.2;      // ratio clipped above at 1 + clip_high  (verl clip_ratio_high, TRL epsilon_high)
  double clip_ratio_c = 0.0;   // dual clip for A < 0: per-token loss capped at -A * c (verl 3.0); 0 = off, else > 1
  LossAgg agg = LossAgg::token_mean;
  double kl_coef = 0.0;        // beta of the KL loss term; 0 = no term (ref_logp may then be undefined)
  KlEstimator kl_estimator = KlEstimator::k3;
  double entropy_coef = 0.0;   // loss -= entropy_coef * agg(entropy); 0 = entropy not needed
};
// From the algorithm section. kl_coef is set to 0 when kl_in_reward (the KL then goes into the reward).
PolicyLossConfig policy_loss_config(const AlgorithmConfig& a);
// GlobalNorm.norm_len from the config: algorithm.loss_norm_len, or rollout.max_new_tokens when it is 0.
double resolve_norm_len(const AlgorithmConfig& a, const RolloutConfig& r);

struct PolicyLossInputs {
  torch::Tensor logp;        // [B, L] log pi(token) under the current policy (requires grad), fp32
  torch::Tensor old_logp;    // [B, L] log-probs of the policy that sampled (detached; = logp.detach() for mu=1)
  torch::Tensor advantages;  // [B] per sequence (broadcast over tokens) or [B, L] per token
  torch::Tensor mask;        // [B, L] 1 = response token in the loss, 0 = prompt/padding/masked (bool or float)
  torch::Tensor ref_logp;    // [B, L] frozen reference log-probs; needed iff kl_coef != 0, else may be undefined
  torch::Tensor entropy;     // [B, L] per-token entropy of pi (token_entropy); needed iff entropy_coef != 0
};

// Detached metrics of one micro-batch, every field a 0-d fp64 tensor on the inputs' device (no sync).
// The token means are CONTRIBUTIONS: token sums divided by GlobalNorm.total_tokens, so adding the metrics of
// all micro-batches (add()) and all-reducing them with SUM across ranks gives the mean over the global
// batch; ratio_max is combined with max (all-reduce MAX). Fields of absent terms are 0.
struct PolicyLossMetrics {
  torch::Tensor clip_frac_low;   // tokens with A < 0 and ratio < 1 - clip_low (lower clip active; TRL clip_ratio/low)
  torch::Tensor clip_frac_high;  // tokens with A > 0 and ratio > 1 + clip_high (upper clip active; TRL clip_ratio/high)
  torch::Tensor dual_clip_frac;  // tokens with A < 0 and ratio > clip_ratio_c (dual clip active; verl pg_clipfrac_lower)
  torch::Tensor ratio_mean;      // mean of exp(logp - old_logp)
  torch::Tensor ratio_max;       // max of the same over valid tokens (combine with max)
  torch::Tensor approx_kl_old;   // mean of old_logp - logp (verl ppo_kl; 0 when mu = 1)
  torch::Tensor kl_mean;         // mean per-token KL estimate to the reference (0 without ref_logp)
  torch::Tensor entropy_mean;    // mean per-token entropy (0 without entropy)
  torch::Tensor pg_loss;         // this micro-batch's share of the surrogate term (same normaliser as loss)
  torch::Tensor kl_loss;         // share of the aggregated KL term (before kl_coef)
  torch::Tensor entropy_loss;    // share of the aggregated entropy term (before entropy_coef)

  // Accumulate another micro-batch: sums everything except ratio_max (max). Undefined fields = empty.
  void add(const PolicyLossMetrics& o);
  // One sync: "loss/<field>" -> value for every field above ("loss/clip_frac_low", "loss/ratio_max", ...).
  std::map<std::string, double> to_map() const;
};

struct PolicyLossOutput {
  torch::Tensor loss;          // 0-d, differentiable: pg_loss + kl_coef * kl_loss - entropy_coef * entropy_loss
  PolicyLossMetrics metrics;
};

// The loss of one micro-batch, normalised by the global batch (see GlobalNorm). Per token (verl semantics):
//   ratio = exp(clamp(logp - old_logp, -20, 20))
//   l1 = -A * ratio;  l2 = -A * clamp(ratio, 1 - clip_low, 1 + clip_high);  l = max(l1, l2)
//   dual clip (clip_ratio_c > 0): for A < 0, l = min(l, -A * clip_ratio_c)
//   kl = estimator(logp, ref_logp) (differentiable in logp);  then each term aggregated with `agg`.
// Arithmetic in fp32 (bf16/fp16 inputs are upcast; fp64 inputs stay fp64, which the tests use). Masked tokens contribute nothing, whatever their values
// (NaN/inf in masked positions are ignored). Throws rlvr::Error on shape mismatches, a missing ref_logp or
// entropy that the config needs, or a GlobalNorm that is zero where the mode needs it.
PolicyLossOutput policy_loss(const PolicyLossInputs& in, const PolicyLossConfig& cfg, const GlobalNorm& norm);

// Per-token KL estimate [B, L] (fp32, differentiable in logp, zero where mask is 0).
torch::Tensor token_kl(const torch::Tensor& logp, const torch::Tensor& ref_logp, const torch::Tensor& mask,
                       KlEstimator est);
// kl_in_reward: per-sequence sums of the per-token KL over valid tokens, [B] fp32, detached. The caller
// subtracts kl_coef * sequence_kl from each completion's reward before computing advantages (verl
// apply_kl_penalty with outcome rewards: the token penalties summed over the response; computed with the
// sampling policy's log-probs, i.e. old_logp).
torch::Tensor sequence_kl(const torch::Tensor& logp, const torch::Tensor& ref_logp, const torch::Tensor& mask,
                          KlEstimator est);

// Aggregate a per-token matrix [B, L] with `agg` over the global batch (the building block of policy_loss).
torch::Tensor aggregate(const torch::Tensor& per_token, const torch::Tensor& mask, LossAgg agg,
                        const GlobalNorm& norm);

// The weight of each token in `agg` over the global batch, [B, L] fp32: aggregate(x, mask, agg, norm) equals
// (x * aggregation_weights(mask, agg, norm)).sum() for every x (to rounding), and masked tokens weigh 0.
torch::Tensor aggregation_weights(const torch::Tensor& mask, LossAgg agg, const GlobalNorm& norm);

// policy_loss's loss (surrogate, KL and entropy terms) for a flat set of n tokens with explicit aggregation
// weights: sum_t w_t * (surrogate_t + kl_coef * kl_t - entropy_coef * entropy_t). Every input is [n] (advantages
// one per token; ref_logp needed iff kl_coef != 0, entropy iff entropy_coef != 0). Differentiable in logp and
// entropy; every term depends on its own token only, which is what lets the fused lm_head pass
// (model::lm_head_fused_loss) take its gradient chunk by chunk. Over all tokens of a micro-batch, with the weights
// of aggregation_weights, it equals policy_loss(...).loss.
torch::Tensor weighted_token_loss(const PolicyLossInputs& in, const torch::Tensor& weights,
                                  const PolicyLossConfig& cfg);

// Entropy of the distribution softmax(logits) at every position: [B, L, V] -> [B, L] fp32 (logsumexp -
// sum p * logits, computed in fp32 chunks of rows to bound memory). Differentiable; detach it if the bonus
// is off and you only log it. Logits should already be divided by the sampling temperature.
torch::Tensor token_entropy(const torch::Tensor& logits);

}  // namespace rlvr::trainer
