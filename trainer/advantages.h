// Advantage estimators for outcome rewards: one scalar reward per completion in, one scalar advantage per
// completion out (the loss broadcasts it over the completion's tokens). Pure functions on CPU/GPU tensors;
// no reward shaping and no KL here (see policy_loss.h sequence_kl for the kl_in_reward penalty).
// Legend: N = completions in the batch (prompts x G), G = group size (completions per prompt, contiguous).
#pragma once
#include <string>

#include <torch/torch.h>

namespace rlvr {
struct AlgorithmConfig;
}

namespace rlvr::trainer {

// algorithm.advantage. One enum, one switch in compute_advantages().
enum class AdvantageKind {
  grpo,          // (r - mean_g) / (std + eps), std chosen by scale_rewards (TRL GRPOTrainer, verl "grpo")
  dr_grpo,       // r - mean_g (Dr. GRPO; = grpo with scale_rewards none; verl norm_adv_by_std_in_grpo=False)
  rloo,          // r_i - mean_{j != i} r_j (leave-one-out baseline; verl "rloo", NeMo-RL default)
  reinforce_pp,  // r - mean_g, then whitened over the whole batch (verl "reinforce_plus_plus_baseline")
};
// algorithm.scale_rewards (TRL semantics; only used by grpo, ignored by the other kinds).
enum class ScaleRewards {
  group,  // divide by the std of the completion's own group
  batch,  // divide by the std of all N rewards (TRL "batch": std of the raw rewards, not of r - mean_g)
  none,   // no division (then grpo == dr_grpo)
};

// Parse the config strings; unknown names throw rlvr::ConfigError listing the known ones.
AdvantageKind parse_advantage_kind(const std::string& name);
ScaleRewards parse_scale_rewards(const std::string& name);
const char* to_string(AdvantageKind k);
const char* to_string(ScaleRewards s);

struct AdvantageOptions {
  AdvantageKind kind = AdvantageKind::grpo;
  ScaleRewards scale = ScaleRewards::group;
  int64_t group_size = 8;   // G; N % G must be 0. G == 1 is allowed (every advantage is then 0)
  double eps = 1e-6;        // added to the std (algorithm.adv_eps; verl 1e-6, TRL 1e-4)
  // reinforce_pp only: per-completion weights of the batch whitening, [N] (typically the number of loss
  // tokens of each completion). verl whitens the token-level advantages, i.e. weights each completion by
  // its token count; pass the token counts to match verl exactly. Undefined = every completion weight 1.
  torch::Tensor whiten_weights;
};

struct AdvantageResult {
  torch::Tensor advantages;      // [N], dtype of the rewards (fp32 usually), detached, same device
  torch::Tensor group_mean;      // [N/G] fp64 CPU, mean reward of each group
  torch::Tensor group_std;       // [N/G] fp64 CPU, unbiased std of each group (0 for G == 1 and constant groups)
  double frac_zero_std = 0.0;    // fraction of groups whose gradable rewards are all equal, or that have
                                 // fewer than 2 gradable rewards (TRL frac_reward_zero_std)
  int64_t num_groups = 0;        // N / G
  int64_t num_ungradable = 0;    // NaN rewards (excluded from the statistics, advantage 0)
};

// From the config: algorithm.{advantage, scale_rewards, adv_eps} and rollout.group_size. Throws ConfigError.
AdvantageOptions advantage_options(const AlgorithmConfig& a, int64_t group_size);

// rewards: [N] float tensor of the GLOBAL batch (all ranks: batch-level statistics, i.e. scale_rewards
// batch and reinforce_pp, need every reward; all-gather the rewards first, then slice your rank's rows).
// Groups are contiguous runs of G completions: rows [g*G, (g+1)*G) belong to prompt g.
// All statistics are computed in fp64. std is torch.std (unbiased, divisor G-1), as TRL (nanstd) and verl
// (torch.std) do. A NaN reward means "could not grade" (TRL: every reward function returned None): it is
// left out of every mean/std/baseline (n_g = gradable rewards of the group replaces G) and its advantage is 0.
// Guarantees: no NaN/inf for finite rewards. A group whose rewards are all equal (including G == 1)
// gets advantage exactly 0 for every kind, also with eps = 0 (verl gives a G == 1 group r/(1+eps) for
// grpo and r for rloo; TRL requires G >= 2). rloo and reinforce_pp ignore `scale` (verl semantics).
// reinforce_pp: a_i = r_i - mean_g; then a <- (a - mean_w(a)) / sqrt(var_w(a) + 1e-8) over the batch,
// with weights w, var_w unbiased (x sum(w)/(sum(w)-1)), as verl masked_whiten. Rows of constant groups are
// then set back to exactly 0 (verl leaves them at -mean_w/std, non-zero when the weights are not uniform:
// a length-dependent push on groups that carry no signal; we keep the "constant group -> 0" invariant).
// sum(w) <= 1 or a zero batch variance -> no whitening (centred advantages returned).
// Throws rlvr::Error (RLVR_CHECK) for a non-1-D tensor, N % G != 0, G < 1, or an infinite reward.
AdvantageResult compute_advantages(const torch::Tensor& rewards, const AdvantageOptions& opt);

}  // namespace rlvr::trainer
