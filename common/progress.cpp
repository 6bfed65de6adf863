#include "common/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

namespace rlvr {

Progress::Progress(std::string label, int64_t total, double plain_interval_s, bool enabled)
    : label_(std::move(label)), total_(total), interval_(plain_interval_s), enabled_(enabled),
      tty_(::isatty(STDERR_FILENO) == 1), start_(std::chrono::steady_clock::now()), last_print_(start_) {}

Progress::~Progress() { finish(); }

std::string Progress::render(const std::string& suffix) const {
  double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rate = el > 0 ? done_ / el : 0.0;
  std::string s = fmt::format("{} {}/{}", label_, done_, total_);
  if (total_ > 0) s += fmt::format(" ({:.0f}%)", 100.0 * done_ / total_);
  s += fmt::format(" {:.2f} it/s", rate);
  if (rate > 0 && total_ > done_) s += fmt::format(" ETA {:.0f}s", (total_ - done_) / rate);
  if (!suffix.empty()) s += " " + suffix;
  return s;
}

void Progress::advance(int64_t n, const std::string& suffix) {
  done_ += n;
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s", render(suffix).c_str());
    std::fflush(stderr);
  } else if (std::chrono::duration<double>(now - last_print_).count() >= interval_ || done_ == total_) {
    std::fprintf(stderr, "%s\n", render(suffix).c_str());
    last_print_ = now;
  }
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (enabled_ && tty_) std::fprintf(stderr, "\n");
}

}  // namespace rlvr
