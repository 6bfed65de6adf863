// Progress display for long phases: "generate 40/64 (62%) 12.5 completions/s ETA 2s | 830 tok/s".
// On a terminal (stderr, where the log goes; stdout stays for command output) the active displays share one
// redrawn line, outer first ("train 3/10 steps ... | generate 40/64 ..."), and a log message clears and
// redraws it. Otherwise (CI logs, SLURM, pipes) a plain line of every active display is printed at most once
// per interval. Everything is process-wide and thread-safe; set_progress_enabled(false) silences it.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace rlvr {

// logging.progress and logging.progress_every_s (seconds between plain lines when stderr is not a terminal).
void set_progress_enabled(bool on);
bool progress_enabled();
void set_progress_interval(double seconds);
// Forces terminal (true) or plain (false) rendering; tests use it. The default is isatty(stderr).
void set_progress_terminal(bool tty);
// Called by the logger around each message: clear the terminal line, then redraw it.
void progress_before_log();
void progress_after_log();

class Progress {
 public:
  // `unit` names one item ("completions", "steps"); total 0 = unknown (no percentage or ETA).
  Progress(std::string label, int64_t total, std::string unit = "it");
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  void advance(int64_t n = 1, const std::string& suffix = "");
  void set(int64_t done, const std::string& suffix = "");  // absolute count
  void finish();
  // The text of the current state (also used by tests).
  std::string render() const;
  int64_t done() const { return done_; }

 private:
  friend struct ProgressDisplay;
  std::string label_, unit_, suffix_;
  int64_t total_, done_ = 0;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace rlvr
