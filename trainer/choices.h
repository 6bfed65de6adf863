// The names of the config's closed choices, one table each: validation (config.cpp), the parsers that turn them
// into enums (advantages.h, policy_loss.h, optimizer.h; each enum lists its values in table order), the code that
// branches on them and their error messages all read these. No LibTorch.
#pragma once
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <string>
#include <vector>

#include "common/error.h"

namespace rlvr::choices {

inline const std::vector<std::string>& advantage() {
  static const std::vector<std::string> n{"grpo", "dr_grpo", "rloo", "reinforce_pp"};
  return n;
}
inline const std::vector<std::string>& scale_rewards() {
  static const std::vector<std::string> n{"group", "batch", "none"};
  return n;
}
inline const std::vector<std::string>& loss_agg() {
  static const std::vector<std::string> n{"token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"};
  return n;
}
inline const std::vector<std::string>& kl_estimator() {  // verl's kl | mse | low_var_kl are mapped to these on load
  static const std::vector<std::string> n{"k1", "k2", "k3"};
  return n;
}

inline const std::vector<std::string>& device() {  // run.device
  static const std::vector<std::string> n{"auto", "cpu", "cuda"};
  return n;
}
inline const std::vector<std::string>& dtype() {  // model.dtype
  static const std::vector<std::string> n{"auto", "fp32", "bf16"};
  return n;
}
inline const std::vector<std::string>& lr_schedule() {  // optim.schedule, in LrSchedule's order
  static const std::vector<std::string> n{"constant", "linear", "cosine"};
  return n;
}
inline const std::vector<std::string>& dist_backend() {  // distributed.backend
  static const std::vector<std::string> n{"auto", "nccl", "gloo", "mpi"};
  return n;
}

// The position of `value` in `names`; ConfigError "<key> must be one of [...], got '<value>'" otherwise.
inline size_t index_of(const char* key, const std::vector<std::string>& names, const std::string& value) {
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == value) return i;
  throw ConfigError(fmt::format("{} must be one of [{}], got '{}'", key, fmt::join(names, ", "), value));
}

}  // namespace rlvr::choices
