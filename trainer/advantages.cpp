// Advantage estimators (see advantages.h). Rewards are few (N = prompts x G, thousands at most), so the
// statistics run on a CPU fp64 copy with plain loops: exact, branch-friendly for NaN (ungradable) rewards
// and constant groups, and free of device syncs beyond the one copy.
#include "trainer/advantages.h"

#include <cmath>
#include <vector>

#include "common/error.h"
#include "trainer/choices.h"
#include "trainer/config.h"

namespace rlvr::trainer {

AdvantageKind parse_advantage_kind(const std::string& name) {
  return static_cast<AdvantageKind>(choices::index_of("algorithm.advantage", choices::advantage(), name));
}

ScaleRewards parse_scale_rewards(const std::string& name) {
  return static_cast<ScaleRewards>(choices::index_of("algorithm.scale_rewards", choices::scale_rewards(), name));
}

const char* to_string(AdvantageKind k) { return choices::advantage().at(static_cast<size_t>(k)).c_str(); }

const char* to_string(ScaleRewards s) { return choices::scale_rewards().at(static_cast<size_t>(s)).c_str(); }

AdvantageOptions advantage_options(const AlgorithmConfig& a, int64_t group_size) {
  AdvantageOptions o;
  o.kind = parse_advantage_kind(a.advantage);
  o.scale = parse_scale_rewards(a.scale_rewards);
  o.group_size = group_size;
  o.eps = a.adv_eps;
  return o;
}

AdvantageResult compute_advantages(const torch::Tensor& rewards, const AdvantageOptions& opt) {
  RLVR_CHECK(rewards.defined() && rewards.dim() == 1, "rewards must be a 1-D tensor [N], got {} dims",
             rewards.defined() ? rewards.dim() : -1);
  const int64_t n = rewards.size(0), g = opt.group_size;
  RLVR_CHECK(g >= 1, "group_size must be >= 1, got {}", g);
  RLVR_CHECK(n % g == 0, "batch of {} rewards is not divisible by group_size {}", n, g);
  RLVR_CHECK(opt.eps >= 0, "adv_eps must be >= 0, got {}", opt.eps);
  const int64_t num_groups = n / g;

  auto r_cpu = rewards.detach().to(torch::kCPU, torch::kFloat64).contiguous();  // [N] fp64
  const double* r = r_cpu.data_ptr<double>();
  std::vector<double> w(n, 1.0);
  if (opt.kind == AdvantageKind::reinforce_pp && opt.whiten_weights.defined()) {
    RLVR_CHECK(opt.whiten_weights.dim() == 1 && opt.whiten_weights.size(0) == n,
               "whiten_weights must be [N={}], got {} dims with {} elements", n, opt.whiten_weights.dim(),
               opt.whiten_weights.numel());
    auto wc = opt.whiten_weights.detach().to(torch::kCPU, torch::kFloat64).contiguous();
    for (int64_t i = 0; i < n; ++i) {
      w[i] = wc.data_ptr<double>()[i];
      RLVR_CHECK(std::isfinite(w[i]) && w[i] >= 0, "whiten_weights[{}] = {} must be finite and >= 0", i, w[i]);
    }
  }

  AdvantageResult out;
  out.num_groups = num_groups;
  auto mean_t = torch::zeros({num_groups}, torch::kFloat64);  // [N/G]
  auto std_t = torch::zeros({num_groups}, torch::kFloat64);   // [N/G]
  double* mean = mean_t.data_ptr<double>();
  double* sd = std_t.data_ptr<double>();
  std::vector<char> gradable(n), constant_group(num_groups);
  std::vector<int64_t> count(num_groups, 0);
  std::vector<double> sum(num_groups, 0.0);

  // Pass 1: per-group count, mean, unbiased std over the gradable (non-NaN) rewards.
  int64_t zero_std_groups = 0, batch_count = 0;
  double batch_sum = 0;
  for (int64_t k = 0; k < num_groups; ++k) {
    double lo = INFINITY, hi = -INFINITY;
    for (int64_t i = k * g; i < (k + 1) * g; ++i) {
      RLVR_CHECK(!std::isinf(r[i]), "reward[{}] is {} (infinite); NaN means ungradable, inf is a bug", i, r[i]);
      gradable[i] = !std::isnan(r[i]);
      if (!gradable[i]) {
        ++out.num_ungradable;
        continue;
      }
      ++count[k];
      sum[k] += r[i];
      lo = std::min(lo, r[i]);
      hi = std::max(hi, r[i]);
    }
    batch_sum += sum[k];
    batch_count += count[k];
    mean[k] = count[k] > 0 ? sum[k] / count[k] : 0.0;
    constant_group[k] = count[k] < 2 || lo == hi;
    if (!constant_group[k]) {
      double ss = 0;
      for (int64_t i = k * g; i < (k + 1) * g; ++i)
        if (gradable[i]) ss += (r[i] - mean[k]) * (r[i] - mean[k]);
      sd[k] = std::sqrt(ss / (count[k] - 1));
    }
    zero_std_groups += constant_group[k];
  }
  out.frac_zero_std = num_groups > 0 ? double(zero_std_groups) / num_groups : 0.0;

  // Pass 2: the estimator.
  std::vector<double> a(n, 0.0);
  switch (opt.kind) {
    case AdvantageKind::grpo:
    case AdvantageKind::dr_grpo: {
      const ScaleRewards scale = opt.kind == AdvantageKind::dr_grpo ? ScaleRewards::none : opt.scale;
      double batch_std = 0;  // TRL "batch": unbiased std of all (gradable) raw rewards
      if (scale == ScaleRewards::batch && batch_count >= 2) {
        const double bm = batch_sum / batch_count;
        double ss = 0;
        for (int64_t i = 0; i < n; ++i)
          if (gradable[i]) ss += (r[i] - bm) * (r[i] - bm);
        batch_std = std::sqrt(ss / (batch_count - 1));
      }
      for (int64_t i = 0; i < n; ++i) {
        const int64_t k = i / g;
        if (!gradable[i] || constant_group[k]) continue;
        const double centred = r[i] - mean[k];
        switch (scale) {
          case ScaleRewards::group: a[i] = centred / (sd[k] + opt.eps); break;
          case ScaleRewards::batch: a[i] = centred / (batch_std + opt.eps); break;  // batch_std > 0 here
          case ScaleRewards::none: a[i] = centred; break;
        }
      }
      break;
    }
    case AdvantageKind::rloo:
      // r_i - (S_g - r_i) / (n_g - 1)  ==  n_g / (n_g - 1) * (r_i - mean_g)   (verl's form)
      for (int64_t i = 0; i < n; ++i) {
        const int64_t k = i / g;
        if (!gradable[i] || constant_group[k]) continue;
        a[i] = r[i] - (sum[k] - r[i]) / double(count[k] - 1);
      }
      break;
    case AdvantageKind::reinforce_pp: {
      double wsum = 0, wa = 0;
      for (int64_t i = 0; i < n; ++i) {
        const int64_t k = i / g;
        if (!gradable[i]) continue;
        a[i] = constant_group[k] ? 0.0 : r[i] - mean[k];
        wsum += w[i];
        wa += w[i] * a[i];
      }
      if (wsum > 1) {
        const double mu = wa / wsum;
        double wss = 0;
        for (int64_t i = 0; i < n; ++i)
          if (gradable[i]) wss += w[i] * (a[i] - mu) * (a[i] - mu);
        const double var = wss / wsum * (wsum / (wsum - 1));  // verl masked_var(unbiased=True)
        if (var > 0) {
          const double inv = 1.0 / std::sqrt(var + 1e-8);  // verl masked_whiten: rsqrt(var + 1e-8)
          for (int64_t i = 0; i < n; ++i)
            if (gradable[i] && !constant_group[i / g]) a[i] = (a[i] - mu) * inv;
        }
      }
      break;
    }
  }

  auto adv = torch::from_blob(a.data(), {n}, torch::kFloat64).clone();  // [N] fp64
  const auto out_dtype = rewards.is_floating_point() ? rewards.scalar_type() : torch::kFloat32;
  out.advantages = adv.to(rewards.device(), out_dtype);
  out.group_mean = mean_t;
  out.group_std = std_t;
  return out;
}

}  // namespace rlvr::trainer
