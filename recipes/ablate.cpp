#include "recipes/ablate.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <map>
#include <regex>
#include <thread>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "recipes/ablate_report.h"
#include "trainer/policy.h"

extern char** environ;

namespace rlvr::recipes {
namespace fs = std::filesystem;
using json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

namespace {

volatile std::sig_atomic_t g_stop_signal = 0;
void on_stop(int sig) { g_stop_signal = sig; }

void install_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: the scheduler's sleep returns early
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string fmt_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  auto n = static_cast<int64_t>(s + 0.5);
  if (n >= 3600) return fmt::format("{}h{:02}m", n / 3600, (n % 3600) / 60);
  if (n >= 60) return fmt::format("{}m{:02}s", n / 60, n % 60);
  return fmt::format("{}s", n);
}

// The newest checkpoint step under <run>/checkpoints (step_<N> directories; 0 = none). Checkpoints are
// renamed into place whole, so a step_<N> directory is complete.
int64_t latest_checkpoint_step(const fs::path& run) {
  static const std::regex re("step_([0-9]+)");
  int64_t best = 0;
  std::error_code ec;
  if (!fs::is_directory(run / "checkpoints", ec)) return 0;
  for (auto& e : fs::directory_iterator(run / "checkpoints", ec)) {
    std::smatch m;
    std::string n = e.path().filename().string();
    if (e.is_directory() && std::regex_match(n, m, re) && fs::exists(e.path() / "trainer_state"))
      best = std::max<int64_t>(best, std::stoll(m[1]));
  }
  return best;
}

// The last training step written to metrics.jsonl (0 when none).
int64_t last_logged_step(const fs::path& metrics) {
  int64_t step = 0;
  std::error_code ec;
  if (!fs::exists(metrics, ec)) return 0;
  try {
    for_each_line(metrics, [&](std::string_view line, size_t) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_discarded() && j.is_object() && j.contains("reward/mean")) step = std::max(step, j.value("step", int64_t{0}));
    });
  } catch (const std::exception&) {
  }
  return step;
}

// A child process (the rlvr binary, or the command prefix) with stdout/stderr appended to `log`, OMP/MKL
// threads set, and SIGTERM on our death (PR_SET_PDEATHSIG): a killed `rlvr ablate` makes its training
// children checkpoint and exit.
pid_t spawn(const std::vector<std::string>& cmd, const fs::path& log, int threads) {
  fs::create_directories(log.parent_path());
  {
    std::string header = fmt::format("\n==== {} ====\n", fmt::join(cmd, " "));
    int hfd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    RLVR_CHECK(hfd >= 0, "cannot open log '{}': {}", log.string(), std::strerror(errno));
    ssize_t ignored = ::write(hfd, header.data(), header.size());
    (void)ignored;
    ::close(hfd);
  }
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  RLVR_CHECK(fd >= 0, "cannot open log '{}': {}", log.string(), std::strerror(errno));
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string_view v(*e);
    if (v.starts_with("OMP_NUM_THREADS=") || v.starts_with("MKL_NUM_THREADS=")) continue;
    env.emplace_back(v);
  }
  env.push_back("OMP_NUM_THREADS=" + std::to_string(threads));
  env.push_back("MKL_NUM_THREADS=" + std::to_string(threads));
  std::vector<char*> argv, envp;
  for (auto& a : cmd) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (auto& a : env) envp.push_back(const_cast<char*>(a.c_str()));
  envp.push_back(nullptr);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  RLVR_CHECK(pid >= 0, "fork failed: {}", std::strerror(errno));
  if (pid == 0) {  // only async-signal-safe calls until exec
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(1);
    // Its own process group: a Ctrl-C on the terminal reaches only the ablation, which forwards one SIGTERM
    // (a second signal would make the trainer exit without its checkpoint).
    ::setpgid(0, 0);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    if (std::strchr(argv[0], '/')) ::execve(argv[0], argv.data(), envp.data());
    else ::execvpe(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(fd);
  return pid;
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

// Runs one child to completion (the base stage). A stop signal is forwarded; returns its exit code.
int run_blocking(const std::vector<std::string>& cmd, const fs::path& log, int threads) {
  pid_t pid = spawn(cmd, log, threads);
  bool forwarded = false;
  while (true) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return exit_code_of(status);
    if (g_stop_signal && !forwarded) ::kill(pid, SIGTERM), forwarded = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

// Holds <out>/.lock for the whole ablation. The descriptor is inherited by the children (no CLOEXEC), so
// a later invocation also waits for the runs of a killed one to finish their last checkpoint.
int acquire_lock(const fs::path& out, double wait_s) {
  fs::create_directories(out);
  auto p = out / ".lock";
  int fd = ::open(p.c_str(), O_RDWR | O_CREAT, 0644);
  RLVR_CHECK(fd >= 0, "cannot open '{}': {}", p.string(), std::strerror(errno));
  auto t0 = Clock::now();
  bool said = false;
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (!said) log::info("ablate: waiting for another rlvr ablate (or its runs) using {} to exit", out.string()), said = true;
    if (since(t0) > wait_s)
      throw Error(fmt::format("'{}' is in use by another rlvr ablate or its runs (lock {} held for {:.0f} s)", out.string(),
                              p.string(), wait_s));
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return fd;
}

json rubric_json(const std::vector<RewardSpec>& r) {
  json a = json::array();
  for (auto& s : r) a.push_back({{"name", s.name}, {"weight", s.weight}, {"args", s.args}});
  return a;
}

enum class Phase { pending, train, eval, done, failed };

struct Job {
  const Arm* arm = nullptr;
  int64_t seed = 0;
  fs::path dir, cfg;
  std::string id;          // "<arm>/seed_<s>"
  int64_t steps = 0;
  Phase phase = Phase::pending;
  pid_t pid = -1;
  Clock::time_point t_phase;
  int64_t step_at_start = 0;
  double eval_s = 0;
};

struct Ctx {
  const AblationConfig& ab;
  const AblateRunOptions& opts;
  AblationLayout L;
  int threads = 1;  // per run
  fs::path eval_yaml;
  std::string start_model;
};

std::vector<std::string> train_command(const Ctx& c, const std::string& sub, const fs::path& cfg, bool resume) {
  std::vector<std::string> cmd = c.ab.schedule.command_prefix;
  cmd.push_back(c.opts.exe);
  if (c.ab.schedule.nproc_per_run > 1)
    for (auto w : {std::string("launch"), std::string("--nproc"), std::to_string(c.ab.schedule.nproc_per_run), std::string("--")})
      cmd.push_back(w);
  int per_rank = std::max(1, c.threads / c.ab.schedule.nproc_per_run);
  for (auto w : {sub, std::string("-c"), cfg.string(), "run.threads=" + std::to_string(per_rank)}) cmd.push_back(w);
  if (resume) cmd.push_back("--resume"), cmd.push_back("latest");
  return cmd;
}

std::vector<std::string> eval_command(const Ctx& c, const std::string& model, const fs::path& out_json,
                                      const fs::path& samples, int k, double temperature, double top_p) {
  std::vector<std::string> cmd = {c.opts.exe, "eval", "-c", c.eval_yaml.string(), "--model", model,
                                  "--samples", std::to_string(k), "--temperature", fmt::format("{}", temperature),
                                  "--top-p", fmt::format("{}", top_p), "--out", out_json.string()};
  if (c.ab.eval.max_new_tokens > 0) cmd.push_back("--max-new-tokens"), cmd.push_back(std::to_string(c.ab.eval.max_new_tokens));
  if (!samples.empty()) cmd.push_back("--per-sample"), cmd.push_back(samples.string());
  if (!c.ab.eval.data.empty()) cmd.push_back("--data"), cmd.push_back(c.ab.eval.data);
  return cmd;
}

// Writes `text` to `path` unless it holds the same text; a run that already started from a different config
// is refused (resuming it would mix two configs in one run).
void write_run_config(const fs::path& path, const std::string& text, const fs::path& run_dir, const std::string& id) {
  if (fs::exists(path)) {
    std::string old = read_file(path);
    if (old == text) return;
    bool started = fs::exists(AblationLayout::status(run_dir)) || latest_checkpoint_step(run_dir) > 0;
    if (started)
      throw ConfigError(fmt::format("run {} was started with a different config ({}); use another output_dir, or delete "
                                    "{} to redo it", id, path.string(), run_dir.string()));
  }
  write_file_atomic(path, text);
}

// ---- base stage ------------------------------------------------------------------------------------
std::string prepare_start_model(Ctx& c, const Config& base) {
  const auto& ab = c.ab;
  if (!ab.sft.config.empty()) {
    fs::path dir = c.L.base() / "sft";
    auto ov = ab.sft.overrides;
    ov.push_back("run.output_dir=" + dir.string());
    Config sft = load_config(ab.sft.config, ov);
    fs::path cfg = c.L.root / "configs" / "sft.yaml";
    write_run_config(cfg, to_yaml(sft), dir, "sft");
    fs::path ck = dir / "checkpoints" / ("step_" + std::to_string(sft.train.steps));
    if (!fs::exists(ck / "trainer_state")) {
      int64_t latest = latest_checkpoint_step(dir);
      if (latest == 0 && fs::exists(dir)) fs::remove_all(dir);  // nothing to resume: a fresh directory
      log::info("ablate: shared SFT base ({} steps{}) -> {}", sft.train.steps,
                latest ? fmt::format(", resuming at step {}", latest) : "", dir.string());
      auto t0 = Clock::now();
      int rc = run_blocking(train_command(c, "sft", cfg, latest > 0), c.L.log("sft"), c.threads);
      if (g_stop_signal) throw Error("interrupted during the shared SFT stage (resume by running the same command)",
                                     ExitCode::interrupted);
      RLVR_CHECK(rc == 0, "the shared SFT stage failed (exit {}); log: {}", rc, c.L.log("sft").string());
      log::info("ablate: SFT base done in {}", fmt_duration(since(t0)));
    } else {
      log::info("ablate: shared SFT base already at {}", ck.string());
    }
    return ck.string();
  }
  if (base.model.path.rfind("builtin:", 0) == 0) {
    // One initialisation shared by every arm and seed (otherwise run.seed would also change the start model).
    fs::path m = c.L.base() / "model";
    if (!fs::exists(m / "config.json")) {
      log::info("ablate: writing the starting model {} (init seed {}) to {}", base.model.path, base.run.seed, m.string());
      auto policy = trainer::load_policy(base.model, c.L.base() / "scratch", static_cast<uint64_t>(base.run.seed), at::kCPU);
      policy.model->save_pretrained(m, policy.tokenizer_dir);
    }
    return m.string();
  }
  return base.model.path;
}

void evaluate_start(Ctx& c) {
  if (fs::exists(c.L.before_eval())) return;
  log::info("ablate: held-out evaluation of the starting model {}", c.start_model);
  int rc = run_blocking(eval_command(c, c.start_model, c.L.before_eval(), c.L.before_samples(), c.ab.eval.samples,
                                     c.ab.eval.temperature, c.ab.eval.top_p),
                        c.L.log("eval_before"), c.threads);
  if (g_stop_signal) throw Error("interrupted during the starting model's evaluation", ExitCode::interrupted);
  RLVR_CHECK(rc == 0, "evaluation of the starting model failed (exit {}); log: {}", rc, c.L.log("eval_before").string());
}

// The random_reward control's rate: the given one, or the starting model's accuracy sampled like the
// training rollouts (k = group_size at rollout.temperature), so the control matches the real reward's base rate.
double control_rate(Ctx& c, const Config& base) {
  if (c.ab.control_rate > 0) return c.ab.control_rate;
  bool same = c.ab.eval.temperature == base.rollout.temperature && c.ab.eval.top_p == base.rollout.top_p &&
              c.ab.eval.samples >= 2;
  fs::path p = same ? c.L.before_eval() : c.L.base() / "rate_eval.json";
  std::string key = "mean@" + std::to_string(same ? c.ab.eval.samples : base.rollout.group_size);
  if (!fs::exists(p)) {
    log::info("ablate: base rate of the accuracy reward (k = {} at temperature {})", base.rollout.group_size,
              base.rollout.temperature);
    int rc = run_blocking(eval_command(c, c.start_model, p, {}, base.rollout.group_size, base.rollout.temperature,
                                       base.rollout.top_p),
                          c.L.log("eval_rate"), c.threads);
    if (g_stop_signal) throw Error("interrupted during the base-rate evaluation", ExitCode::interrupted);
    RLVR_CHECK(rc == 0, "base-rate evaluation failed (exit {}); log: {}", rc, c.L.log("eval_rate").string());
  }
  auto j = nlohmann::json::parse(read_file(p));
  RLVR_CHECK(j.contains(key), "'{}' has no {}", p.string(), key);
  return j[key].get<double>();
}

void write_status(const Job& j, const std::string& status, int rc, const std::string& phase, const fs::path& log) {
  json s;
  s["status"] = status;
  if (status != "ok") s["phase"] = phase, s["exit_code"] = rc;
  s["log"] = log.string();
  s["eval_seconds"] = j.eval_s;
  s["steps"] = j.steps;
  write_file_atomic(AblationLayout::status(j.dir), s.dump(2) + "\n");
}

}  // namespace

int run_ablation(const AblationConfig& ab, const AblateRunOptions& opts) {
  g_stop_signal = 0;
  install_handlers();
  Ctx c{ab, opts, AblationLayout{fs::path(ab.out_dir())}, /*threads=*/1, /*eval_yaml=*/{}, /*start_model=*/{}};
  const int parallel = opts.parallel > 0 ? opts.parallel : ab.schedule.parallel;
  const int total_threads = ab.schedule.threads > 0 ? ab.schedule.threads
                                                    : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  int lock = acquire_lock(c.L.root, opts.lock_wait_s);
  (void)lock;  // held until exit
  auto t_start = Clock::now();
  fs::create_directories(c.L.root / "configs");
  fs::create_directories(c.L.root / "logs");
  fs::create_directories(c.L.base());

  // Base stage, with every thread.
  c.threads = total_threads;
  Config base = load_config(ab.base_config, ab.base_overrides);
  c.start_model = prepare_start_model(c, base);
  Config eval_cfg = base;
  eval_cfg.model.path = c.start_model;
  eval_cfg.run.output_dir = c.L.base().string();
  c.eval_yaml = c.L.root / "configs" / "eval.yaml";
  write_file_atomic(c.eval_yaml, to_yaml(eval_cfg));
  evaluate_start(c);
  double rate = 0;
  bool has_random = false;
  for (auto& a : ab.arms) has_random |= a.control == "random_reward";
  if (has_random) {
    rate = control_rate(c, base);
    log::info("ablate: random_reward control with rate {:.4f}", rate);
  }

  // Plan: every arm x seed, seed-major so that a partial ablation covers every arm.
  std::vector<Job> jobs;
  json plan;
  plan["name"] = ab.name;
  plan["baseline"] = ab.baseline;
  plan["seeds"] = ab.seeds;
  plan["start_model"] = c.start_model;
  plan["base_config"] = ab.base_config;
  if (has_random) plan["control_rate"] = rate;
  plan["eval"] = {{"data", ab.eval.data.empty() ? "held-out split of " + base.data.train : ab.eval.data},
                  {"samples", ab.eval.samples},
                  {"temperature", ab.eval.temperature},
                  {"top_p", ab.eval.top_p},
                  {"max_new_tokens", ab.eval.max_new_tokens > 0 ? ab.eval.max_new_tokens : base.rollout.max_new_tokens}};
  plan["report"] = {{"bootstrap", ab.report.bootstrap}, {"confidence", ab.report.confidence}, {"seed", ab.report.seed},
                    {"min_effect", ab.report.min_effect}, {"min_seeds", ab.report.min_seeds},
                    {"max_zero_std", ab.report.max_zero_std}};
  plan["arms"] = json::array();
  for (auto& arm : ab.arms) {
    Config first = arm_config(ab, arm, ab.seeds.front(), c.start_model, rate, c.L.run_dir(arm.name, ab.seeds.front()).string());
    plan["arms"].push_back({{"name", arm.name}, {"control", arm.control}, {"overrides", arm.overrides},
                            {"rubric", rubric_json(first.rewards)}, {"steps", first.train.steps}});
  }
  for (int64_t seed : ab.seeds)
    for (auto& arm : ab.arms) {
      Job j;
      j.arm = &arm;
      j.seed = seed;
      j.dir = c.L.run_dir(arm.name, seed);
      j.cfg = c.L.config(arm.name, seed);
      j.id = arm.name + "/seed_" + std::to_string(seed);
      Config rc = arm_config(ab, arm, seed, c.start_model, rate, j.dir.string());
      j.steps = rc.train.steps;
      write_run_config(j.cfg, to_yaml(rc), j.dir, j.id);
      auto st = AblationLayout::status(j.dir);
      if (fs::exists(st) && nlohmann::json::parse(read_file(st)).value("status", "") == "ok") j.phase = Phase::done;
      jobs.push_back(std::move(j));
    }
  write_file_atomic(c.L.plan(), plan.dump(2) + "\n");

  c.threads = std::max(1, total_threads / parallel);
  int64_t skipped = 0;
  for (auto& j : jobs) skipped += j.phase == Phase::done;
  log::info("ablate: {} arms x {} seeds = {} runs ({} already finished), {} at a time, {} CPU thread(s) each; out {}",
            ab.arms.size(), ab.seeds.size(), jobs.size(), skipped, parallel, c.threads, c.L.root.string());

  auto start_train = [&](Job& j) {
    std::error_code ec;
    fs::remove(AblationLayout::status(j.dir), ec);  // a failed run is retried
    int64_t latest = latest_checkpoint_step(j.dir);
    j.t_phase = Clock::now();
    if (latest >= j.steps) {
      j.phase = Phase::train;  // trained already: go straight to its evaluation
      j.pid = -1;
      return;
    }
    if (latest == 0 && fs::exists(j.dir)) fs::remove_all(j.dir);  // no checkpoint: nothing to resume
    log::info("ablate: start {} ({}){}", j.id, j.arm->control.empty() ? "arm" : "control",
              latest ? fmt::format(", resuming from step {}", latest) : "");
    j.step_at_start = latest;
    j.phase = Phase::train;
    j.pid = spawn(train_command(c, "train", j.cfg, latest > 0), c.L.log(j.arm->name + "_seed" + std::to_string(j.seed)),
                  c.threads);
  };
  auto start_eval = [&](Job& j) {
    fs::path ck = j.dir / "checkpoints" / ("step_" + std::to_string(j.steps));
    j.phase = Phase::eval;
    j.t_phase = Clock::now();
    j.pid = spawn(eval_command(c, ck.string(), AblationLayout::after_eval(j.dir), AblationLayout::after_samples(j.dir),
                               ab.eval.samples, ab.eval.temperature, ab.eval.top_p),
                  c.L.log(j.arm->name + "_seed" + std::to_string(j.seed)), c.threads);
  };
  auto log_of = [&](const Job& j) { return c.L.log(j.arm->name + "_seed" + std::to_string(j.seed)); };

  double sum_step_s = 0, sum_eval_s = 0;
  int64_t steps_timed = 0, evals_timed = 0;
  int64_t failed = 0, finished = 0;
  auto last_progress = Clock::now() - std::chrono::hours(1);
  bool forwarded = false;
  while (true) {
    int running = 0;
    for (auto& j : jobs) running += (j.phase == Phase::train || j.phase == Phase::eval) && j.pid > 0;
    // Start what fits (never after a stop signal).
    for (auto& j : jobs) {
      if (g_stop_signal || running >= parallel) break;
      if (j.phase != Phase::pending) continue;
      start_train(j);
      if (j.pid < 0) start_eval(j);
      ++running;
    }
    if (running == 0) break;
    if (g_stop_signal && !forwarded) {
      log::warn("ablate: signal {}: stopping the running runs (each writes a checkpoint; run the same command to resume)",
                int(g_stop_signal));
      for (auto& j : jobs)
        if (j.pid > 0) ::kill(j.pid, SIGTERM);
      forwarded = true;
    }
    // Reap.
    int status = 0;
    pid_t pid;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
      for (auto& j : jobs) {
        if (j.pid != pid) continue;
        j.pid = -1;
        int rc = exit_code_of(status);
        double took = since(j.t_phase);
        if (j.phase == Phase::train) {
          if (rc == 0) {
            int64_t done_steps = j.steps - j.step_at_start;
            if (done_steps > 0) sum_step_s += took, steps_timed += done_steps;
            if (!g_stop_signal) start_eval(j);
            else j.phase = Phase::pending;
          } else if (g_stop_signal) {
            j.phase = Phase::pending;  // interrupted: resumed next time
          } else {
            j.phase = Phase::failed;
            ++failed;
            write_status(j, "failed", rc, "train", log_of(j));
            log::error("ablate: run {} failed in training (exit {}); log: {}", j.id, rc, log_of(j).string());
          }
        } else if (j.phase == Phase::eval) {
          if (rc == 0) {
            j.eval_s = took;
            sum_eval_s += took, ++evals_timed;
            j.phase = Phase::done;
            ++finished;
            write_status(j, "ok", 0, "", log_of(j));
            log::info("ablate: finished {} ({} steps; eval {})", j.id, j.steps, fmt_duration(took));
          } else if (g_stop_signal) {
            j.phase = Phase::pending;
          } else {
            j.phase = Phase::failed;
            ++failed;
            write_status(j, "failed", rc, "eval", log_of(j));
            log::error("ablate: run {} failed in evaluation (exit {}); log: {}", j.id, rc, log_of(j).string());
          }
        }
      }
    }
    // Progress: which runs, their step, the ETA of the whole ablation.
    if (since(last_progress) >= opts.progress_every_s) {
      last_progress = Clock::now();
      std::vector<std::string> parts;
      double sps = NAN;
      int64_t remaining_steps = 0, remaining_evals = 0;
      double run_s = 0;
      int64_t run_steps = 0;
      for (auto& j : jobs) {
        if (j.phase == Phase::done || j.phase == Phase::failed) continue;
        int64_t cur = j.phase == Phase::eval ? j.steps : last_logged_step(j.dir / "metrics.jsonl");
        remaining_steps += std::max<int64_t>(0, j.steps - cur);
        ++remaining_evals;
        if (j.phase == Phase::train && j.pid > 0) {
          parts.push_back(fmt::format("{} step {}/{}", j.id, cur, j.steps));
          if (cur > j.step_at_start) run_s += since(j.t_phase), run_steps += cur - j.step_at_start;
        } else if (j.phase == Phase::eval) {
          parts.push_back(fmt::format("{} evaluating", j.id));
        }
      }
      if (steps_timed + run_steps > 0) sps = (sum_step_s + run_s) / double(steps_timed + run_steps);
      double eval_each = evals_timed ? sum_eval_s / evals_timed : 0;
      double eta = (remaining_steps * sps + remaining_evals * eval_each) / parallel;
      int64_t done_all = 0;
      for (auto& j : jobs) done_all += j.phase == Phase::done;
      log::info("ablate: {}/{} done{} | {} | elapsed {}, ETA {}", done_all, jobs.size(),
                failed ? fmt::format(", {} failed", failed) : "", fmt::join(parts, ", "),
                fmt_duration(since(t_start)), fmt_duration(eta));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }

  auto report = write_report(c.L.root);
  int64_t ok = 0;
  for (auto& j : jobs) ok += j.phase == Phase::done;
  log::info("ablate: {} of {} runs finished ({} this time), {} failed; {} in {}; report {}", ok, jobs.size(), finished,
            failed, c.L.root.string(), fmt_duration(since(t_start)), (c.L.root / "report.md").string());
  for (auto& a : report["arms"])
    log::info("ablate:   {:<16} mean@{} after {:.1f}%  {}", a["name"].get<std::string>(), ab.eval.samples,
              a["after"]["mean@k"].is_number() ? 100 * a["after"]["mean@k"].get<double>() : NAN,
              a["verdict"].get<std::string>());
  for (auto& w : report["warnings"]) log::warn("ablate: {}", w.get<std::string>());
  if (g_stop_signal) return static_cast<int>(ExitCode::interrupted);
  return failed > 0 ? static_cast<int>(ExitCode::runtime) : 0;
}

}  // namespace rlvr::recipes
