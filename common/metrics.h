// Metrics sink: one JSON object per step appended to <run_dir>/metrics.jsonl (written each step, so a
// crash loses at most the step in flight; a failed write, such as a full disk, is an Error naming the file,
// never a silently dropped line), plus a one-line console summary of selected keys.
#pragma once
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/fs.h"

namespace rlvr {

class TensorBoardWriter;
using MetricMap = std::map<std::string, double>;

class MetricsSink {
 public:
  // An empty path disables the file (ranks other than 0).
  explicit MetricsSink(const std::filesystem::path& path, bool append = false);
  // Writes {"step": step, <metrics...>}; non-finite values are written as null (valid JSON).
  void write(int64_t step, const MetricMap& metrics);
  // "step 3 | reward 0.412 | acc 0.375 | ..." from the keys present in `metrics`, in `keys` order.
  // Also writes every metric as a TensorBoard scalar at its step (common/tensorboard.h).
  void attach_tensorboard(std::shared_ptr<TensorBoardWriter> tb) { tb_ = std::move(tb); }
  static std::string console_line(int64_t step, const MetricMap& metrics,
                                  const std::vector<std::pair<std::string, std::string>>& keys);

 private:
  CheckedAppender out_;
  std::shared_ptr<TensorBoardWriter> tb_;
};

}  // namespace rlvr
