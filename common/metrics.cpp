#include "common/metrics.h"

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/tensorboard.h"

namespace rlvr {

MetricsSink::MetricsSink(const std::filesystem::path& path, bool append) {
  if (path.empty()) return;
  out_ = CheckedAppender(path, /*truncate=*/!append);
}

void MetricsSink::write(int64_t step, const MetricMap& metrics) {
  if (!out_.is_open()) return;
  nlohmann::ordered_json j;
  j["step"] = step;
  for (const auto& [k, v] : metrics) {
    if (std::isfinite(v)) j[k] = v;
    else j[k] = nullptr;
  }
  out_.append_line(j.dump());
  if (tb_) tb_->add_scalars(step, metrics);
}

std::string MetricsSink::console_line(int64_t step, const MetricMap& metrics,
                                      const std::vector<std::pair<std::string, std::string>>& keys) {
  std::string s = fmt::format("step {}", step);
  for (const auto& [key, label] : keys) {
    auto it = metrics.find(key);
    if (it == metrics.end()) continue;
    s += fmt::format(" | {} {:.4g}", label, it->second);
  }
  return s;
}

}  // namespace rlvr
