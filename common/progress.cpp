#include "common/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <vector>

namespace rlvr {

using Clock = std::chrono::steady_clock;

// The active displays (outermost first) and when the line was last drawn.
struct ProgressDisplay {
  std::mutex mu;
  std::vector<Progress*> active;
  bool enabled = true;
  bool tty = ::isatty(STDERR_FILENO) == 1;
  double interval_s = 30.0;
  bool line_drawn = false;            // terminal: something is on the current line
  Clock::time_point last_draw{}, last_plain = Clock::now();

  std::string line() const {
    std::string s;
    for (auto* p : active) s += (s.empty() ? "" : " | ") + p->render();
    return s;
  }
  void draw_tty() {
    std::fprintf(stderr, "\r\033[K%s", line().c_str());
    std::fflush(stderr);
    line_drawn = true;
    last_draw = Clock::now();
  }
  void clear_tty() {
    if (!line_drawn) return;
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
    line_drawn = false;
  }
  // After a change: terminal redraws at most 10 times a second; plain prints once per interval.
  void update(bool force) {
    if (!enabled || active.empty()) return;
    auto now = Clock::now();
    if (tty) {
      if (force || std::chrono::duration<double>(now - last_draw).count() >= 0.1) draw_tty();
    } else if (std::chrono::duration<double>(now - last_plain).count() >= interval_s) {
      std::fprintf(stderr, "%s\n", line().c_str());
      std::fflush(stderr);
      last_plain = now;
    }
  }
};

static ProgressDisplay& display() {
  static ProgressDisplay d;
  return d;
}

void set_progress_enabled(bool on) {
  std::lock_guard<std::mutex> lk(display().mu);
  display().enabled = on;
}
bool progress_enabled() {
  std::lock_guard<std::mutex> lk(display().mu);
  return display().enabled;
}
void set_progress_interval(double seconds) {
  std::lock_guard<std::mutex> lk(display().mu);
  display().interval_s = seconds;
}
void set_progress_terminal(bool tty) {
  std::lock_guard<std::mutex> lk(display().mu);
  display().tty = tty;
}
void progress_before_log() {
  auto& d = display();
  d.mu.lock();  // held across the message so that no redraw lands inside it
  if (d.tty) d.clear_tty();
}
void progress_after_log() {
  auto& d = display();
  if (d.tty && d.enabled && !d.active.empty()) d.draw_tty();
  d.mu.unlock();
}

Progress::Progress(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), start_(Clock::now()) {
  auto& d = display();
  std::lock_guard<std::mutex> lk(d.mu);
  d.active.push_back(this);
  d.update(/*force=*/false);
}

Progress::~Progress() { finish(); }

std::string Progress::render() const {
  double el = std::chrono::duration<double>(Clock::now() - start_).count();
  double rate = el > 0 ? done_ / el : 0.0;
  std::string s = total_ > 0 ? fmt::format("{} {}/{}", label_, done_, total_) : fmt::format("{} {}", label_, done_);
  if (total_ > 0) s += fmt::format(" ({:.0f}%)", 100.0 * done_ / total_);
  s += fmt::format(" {:.3g} {}/s", rate, unit_);
  if (rate > 0 && total_ > done_) {
    double eta = (total_ - done_) / rate;
    s += eta >= 3600 ? fmt::format(" ETA {:.0f}h{:02.0f}m", eta / 3600, std::fmod(eta, 3600) / 60)
         : eta >= 60 ? fmt::format(" ETA {:.0f}m{:02.0f}s", std::floor(eta / 60), std::fmod(eta, 60))
                     : fmt::format(" ETA {:.0f}s", eta);
  }
  if (!suffix_.empty()) s += " " + suffix_;
  return s;
}

void Progress::advance(int64_t n, const std::string& suffix) {
  auto& d = display();
  std::lock_guard<std::mutex> lk(d.mu);
  done_ += n;
  if (!suffix.empty()) suffix_ = suffix;
  d.update(/*force=*/false);
}

void Progress::set(int64_t done, const std::string& suffix) {
  auto& d = display();
  std::lock_guard<std::mutex> lk(d.mu);
  done_ = done;
  if (!suffix.empty()) suffix_ = suffix;
  d.update(/*force=*/false);
}

void Progress::finish() {
  auto& d = display();
  std::lock_guard<std::mutex> lk(d.mu);
  if (finished_) return;
  finished_ = true;
  d.active.erase(std::remove(d.active.begin(), d.active.end(), this), d.active.end());
  // Terminal: the line is transient (the step's log line follows); what is still active is redrawn.
  if (d.tty && d.enabled) {
    if (d.active.empty()) d.clear_tty();
    else d.draw_tty();
  }
}

}  // namespace rlvr
