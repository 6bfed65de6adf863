// The ablation file of `rlvr ablate -c ablation.yaml`: a base training config, named arms (overrides and/or a
// replacement rubric), built-in controls, seeds, the held-out evaluation every run gets, scheduling and the
// report's statistics settings. Parsing and validation only (typed structs with a comment per field, the
// same machinery as the run config); what runs where is recipes/ablate.h. No LibTorch.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "common/config_io.h"
#include "rewards/reward_spec.h"
#include "trainer/config.h"

namespace rlvr::recipes {

// An optional shared SFT stage: run once, its last checkpoint becomes every arm's model.path.
struct AblationSft {
  std::string config = "";                 // SFT YAML config; "" = no SFT stage
  std::vector<std::string> overrides = {};  // section.key=value applied to it
  template <class V> void visit(V& v) {
    v.field("config", config, "SFT config run once as the shared base of every arm; empty = no SFT stage");
    v.field("overrides", overrides, "section.key=value overrides of the SFT config");
  }
};

// The held-out evaluation, identical for every run (and for the starting model).
struct AblationEval {
  std::string data = "";                   // JSONL or builtin:<task>; "" = the base config's held-out set
  int32_t samples = 4;                     // k samples per problem (mean@k, pass@k, maj@k)
  double temperature = 1.0;                // 0 = greedy (then k > 1 repeats one answer)
  double top_p = 1.0;                      // 1.0 = off
  int32_t max_new_tokens = 0;              // 0 = the base config's rollout.max_new_tokens
  template <class V> void visit(V& v) {
    v.field("data", data, "held-out set: JSONL or builtin:<task>; empty = the base config's eval split");
    v.field("samples", samples, "k samples per problem (mean@k, pass@k, maj@k)");
    v.field("temperature", temperature, "sampling temperature of the evaluation; 0 = greedy");
    v.field("top_p", top_p, "nucleus sampling of the evaluation; 1.0 = off");
    v.field("max_new_tokens", max_new_tokens, "tokens per completion; 0 = the base config's rollout.max_new_tokens");
  }
};

struct AblationSchedule {
  int32_t parallel = 1;                    // runs at once on this machine
  int32_t threads = 0;                     // CPU threads split between the parallel runs; 0 = all cores
  int32_t nproc_per_run = 1;               // ranks per run (> 1: each run through `rlvr launch --nproc N`)
  std::vector<std::string> command_prefix = {};  // prepended to every child command (e.g. [srun, -N1, -n8])
  template <class V> void visit(V& v) {
    v.field("parallel", parallel, "runs at once (each a child process; a crash of one does not stop the others)");
    v.field("threads", threads, "CPU threads split evenly between the parallel runs (run.threads); 0 = all cores");
    v.field("nproc_per_run", nproc_per_run, "data-parallel ranks per run; > 1 runs each through rlvr launch --nproc N");
    v.field("command_prefix", command_prefix,
            "words put before every child command, e.g. [srun, --ntasks=8] on a cluster; empty = run directly");
  }
};

struct AblationReportConfig {
  int32_t bootstrap = 2000;                // bootstrap resamples per interval
  double confidence = 0.95;                // two-sided interval level
  int64_t seed = 12345;                    // resampling seed (same runs -> same intervals)
  double min_effect = 0.05;                // smallest difference of interest, accuracy units (0.05 = 5 points)
  int32_t min_seeds = 3;                   // fewer seeds than this -> a power warning
  double max_zero_std = 0.5;               // mean frac_reward_zero_std above this -> a power warning
  template <class V> void visit(V& v) {
    v.field("bootstrap", bootstrap, "bootstrap resamples per confidence interval");
    v.field("confidence", confidence, "confidence level of the two-sided intervals, in (0, 1)");
    v.field("seed", seed, "seed of the bootstrap resampling (a regenerated report gives the same intervals)");
    v.field("min_effect", min_effect, "smallest difference of interest in accuracy units (0.05 = 5 points); wider intervals warn");
    v.field("min_seeds", min_seeds, "fewer seeds than this give a power warning");
    v.field("max_zero_std", max_zero_std, "an arm whose mean frac_reward_zero_std exceeds this gives a power warning");
  }
};

// One arm: overrides of the base config and/or a whole rubric that replaces its `rewards:`.
struct Arm {
  std::string name;
  std::vector<std::string> overrides;          // section.key=value, applied after the base overrides
  std::optional<std::vector<RewardSpec>> rewards;  // replaces the rubric when set
  std::string control;                         // "" | random_reward | format_only (built-in controls)
};

enum class Control { random_reward, format_only };
Control parse_control(const std::string& name);  // ConfigError with the known names
const char* to_string(Control c);

struct AblationConfig {
  std::string name = "ablation";           // shown in the report
  std::string output_dir = "";             // "" = runs/<name>
  std::string base_config = "";            // GRPO YAML every arm starts from ("" = built-in defaults)
  std::vector<std::string> base_overrides = {};  // section.key=value applied to every arm
  std::vector<int64_t> seeds = {1, 2, 3};  // run.seed of each run of every arm
  std::string baseline = "";               // arm the others are compared with; "" = the first arm
  std::vector<std::string> controls = {};  // random_reward | format_only, added as arms
  double control_rate = 0;                 // random_reward's rate; 0 = the starting model's accuracy
  AblationSft sft;
  AblationEval eval;
  AblationSchedule schedule;
  AblationReportConfig report;
  std::vector<Arm> arms;
  std::string source_file;                 // where it was read from (messages)

  std::string out_dir() const { return output_dir.empty() ? "runs/" + name : output_dir; }
  template <class V> void visit(V& v) {
    v.field("name", name, "ablation name, shown in the report; the default output_dir is runs/<name>");
    v.field("output_dir", output_dir, "directory of the whole ablation (runs, logs, report); empty = runs/<name>");
    v.field("base_config", base_config, "GRPO config every arm starts from (path from the working directory)");
    v.field("base_overrides", base_overrides, "section.key=value overrides applied to every arm");
    v.field("seeds", seeds, "run.seed of the runs of each arm; the same seeds in every arm (paired)");
    v.field("baseline", baseline, "the arm the others are compared with; empty = the first arm");
    v.field("controls", controls, "built-in control arms: random_reward, format_only");
    v.field("control_rate", control_rate,
            "probability of reward 1 in the random_reward control; 0 = the starting model's accuracy at the rollout temperature");
  }
};

// Reads the ablation YAML, applies `key=value` overrides (ablation keys such as eval.samples=8 or
// seeds=[1,2]; keys of a training section such as train.steps=3 go to base_overrides), adds the control
// arms, validates. ConfigError names the file:line and key.
AblationConfig load_ablation(const std::string& path, const std::vector<std::string>& overrides = {});
AblationConfig parse_ablation(const std::string& yaml_text, const std::string& file,
                              const std::vector<std::string>& overrides = {});

// The rubric of a built-in control arm, derived from the base rubric: random_reward = a 0/1 coin with
// `rate` (+ the base's accuracy function at weight 0, so training accuracy is still measured);
// format_only = the base's format function (or `format` with style boxed, r1 for the r1_zero template)
// alone (+ accuracy at weight 0).
std::vector<RewardSpec> control_rubric(Control control, const Config& base, double rate);

// The resolved training config of one arm x seed (base config + base overrides + start model + arm
// overrides/rubric + run.seed, run.output_dir). `rate` is the random_reward control's.
Config arm_config(const AblationConfig& ab, const Arm& arm, int64_t seed, const std::string& start_model,
                  double rate, const std::string& run_dir);

// True when `key` (the part before '=') addresses the training config (run, model, data, ...).
bool is_training_override(const std::string& override_text);

}  // namespace rlvr::recipes
