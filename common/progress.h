// Progress display for long loops: "label 12/40 (30%) 3.1 it/s ETA 9s". On a terminal it redraws one
// line; otherwise (CI, pipes) it prints a plain line at most every `plain_interval_s` seconds.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace rlvr {

class Progress {
 public:
  Progress(std::string label, int64_t total, double plain_interval_s = 10.0, bool enabled = true);
  ~Progress();
  void advance(int64_t n = 1, const std::string& suffix = "");
  void finish();
  // The text of the current state (also used by tests).
  std::string render(const std::string& suffix = "") const;

 private:
  std::string label_;
  int64_t total_, done_ = 0;
  double interval_;
  bool enabled_, tty_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_print_;
};

}  // namespace rlvr
