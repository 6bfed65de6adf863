#include "recipes/ablate_config.h"

#include <algorithm>
#include <set>

#include <fmt/ranges.h>

#include "common/error.h"
#include "common/fs.h"
#include "rewards/rubric.h"
#include "trainer/config.h"

namespace rlvr::recipes {
namespace {

const std::vector<std::string> kTrainingSections = {"run",   "model", "data",        "rollout", "rewards",
                                                    "algorithm", "optim", "train", "distributed", "logging"};
const std::vector<std::string> kTopKeys = {"name",     "output_dir", "base_config", "base_overrides", "seeds",
                                           "baseline", "controls",   "control_rate", "sft",           "eval",
                                           "schedule", "report",     "arms"};

template <class S>
void read_section(const YAML::Node& root, const char* key, S& s, const std::string& file) {
  YamlReader r(root[key], key, file);
  s.visit(r);
  r.finish();
}

std::vector<RewardSpec> read_rubric(const YAML::Node& n, const std::string& where, const std::string& file) {
  RLVR_CONFIG_CHECK(n.IsSequence() && n.size() > 0, "{} must be a non-empty list of {{name, weight, args}} ({})",
                    where, node_location(n, file));
  std::vector<RewardSpec> out;
  for (size_t i = 0; i < n.size(); ++i) {
    RewardSpec s;
    YamlReader r(n[i], fmt::format("{}[{}]", where, i), file);
    s.visit(r);
    r.finish();
    RLVR_CONFIG_CHECK(!s.name.empty(), "{}[{}].name is missing ({})", where, i, node_location(n[i], file));
    out.push_back(std::move(s));
  }
  return out;
}

bool valid_name(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  }) && s != "." && s != "..";
}

Arm read_arm(const YAML::Node& n, size_t i, const std::string& file) {
  std::string where = fmt::format("arms[{}]", i);
  RLVR_CONFIG_CHECK(n.IsMap(), "{} must be a mapping with name, overrides, rewards ({})", where, node_location(n, file));
  Arm a;
  const std::vector<std::string> known = {"name", "overrides", "rewards"};
  for (auto it = n.begin(); it != n.end(); ++it) {
    auto k = it->first.as<std::string>();
    if (std::find(known.begin(), known.end(), k) == known.end()) {
      auto g = closest_key(k, known);
      throw ConfigError(fmt::format("unknown key '{}.{}' ({}){}", where, k, node_location(it->first, file),
                                    g.empty() ? fmt::format("; known: [{}]", fmt::join(known, ", "))
                                              : fmt::format("; did you mean '{}.{}'?", where, g)));
    }
  }
  RLVR_CONFIG_CHECK(n["name"] && n["name"].IsScalar(), "{}.name is missing ({})", where, node_location(n, file));
  a.name = n["name"].as<std::string>();
  if (n["overrides"] && !n["overrides"].IsNull()) {
    RLVR_CONFIG_CHECK(n["overrides"].IsSequence(), "{}.overrides must be a list of section.key=value ({})", where,
                      node_location(n["overrides"], file));
    for (auto o : n["overrides"]) {
      auto s = o.as<std::string>();
      RLVR_CONFIG_CHECK(is_training_override(s), "{}.overrides: '{}' is not section.key=value of a training section ({})",
                        where, s, node_location(o, file));
      a.overrides.push_back(s);
    }
  }
  if (n["rewards"] && !n["rewards"].IsNull()) a.rewards = read_rubric(n["rewards"], where + ".rewards", file);
  return a;
}

// key=value on the ablation YAML tree: "eval.samples=8", "seeds=[1,2]", "schedule.parallel=2".
void apply_override(YAML::Node& root, const std::string& ov) {
  auto eq = ov.find('=');
  RLVR_CONFIG_CHECK(eq != std::string::npos && eq > 0, "override '{}' must look like key=value or section.key=value", ov);
  std::string path = ov.substr(0, eq), value = ov.substr(eq + 1);
  YAML::Node val;
  try {
    val = YAML::Load(value.empty() ? std::string("''") : value);
  } catch (const YAML::Exception& e) {
    throw ConfigError(fmt::format("override '{}': the value is not valid YAML: {}", ov, e.msg));
  }
  auto dot = path.find('.');
  std::string top = path.substr(0, dot);
  if (std::find(kTopKeys.begin(), kTopKeys.end(), top) == kTopKeys.end() || top == "arms") {
    auto g = closest_key(top, kTopKeys);
    throw ConfigError(fmt::format("override '{}': unknown ablation key '{}'{}", ov, top,
                                  g.empty() ? "" : fmt::format("; did you mean '{}'?", g)));
  }
  if (dot == std::string::npos) root[top] = val;
  else root[top][path.substr(dot + 1)] = val;
}

}  // namespace

Control parse_control(const std::string& name) {
  if (name == "random_reward") return Control::random_reward;
  if (name == "format_only") return Control::format_only;
  throw ConfigError(fmt::format("unknown control '{}'; known: [random_reward, format_only]", name));
}

const char* to_string(Control c) { return c == Control::random_reward ? "random_reward" : "format_only"; }

bool is_training_override(const std::string& ov) {
  auto eq = ov.find('=');
  auto dot = ov.find('.');
  if (eq == std::string::npos || dot == std::string::npos || dot > eq) return false;
  auto section = ov.substr(0, dot);
  return std::find(kTrainingSections.begin(), kTrainingSections.end(), section) != kTrainingSections.end();
}

AblationConfig parse_ablation(const std::string& text, const std::string& file, const std::vector<std::string>& overrides) {
  YAML::Node root;
  try {
    root = text.empty() ? YAML::Node(YAML::NodeType::Map) : YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(fmt::format("{}:{}: YAML syntax error: {}", file, e.mark.line + 1, e.msg));
  }
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  RLVR_CONFIG_CHECK(root.IsMap(), "{}: an ablation file must be a mapping (name, base_config, arms, seeds, ...)", file);
  std::vector<std::string> training_ovs;
  for (auto& ov : overrides) {
    if (is_training_override(ov)) training_ovs.push_back(ov);
    else apply_override(root, ov);
  }
  for (auto it = root.begin(); it != root.end(); ++it) {
    auto k = it->first.as<std::string>();
    if (std::find(kTopKeys.begin(), kTopKeys.end(), k) == kTopKeys.end()) {
      auto g = closest_key(k, kTopKeys);
      throw ConfigError(fmt::format("unknown key '{}' ({}){}", k, node_location(it->first, file),
                                    g.empty() ? fmt::format("; known: [{}]", fmt::join(kTopKeys, ", "))
                                              : fmt::format("; did you mean '{}'?", g)));
    }
  }
  AblationConfig c;
  c.source_file = file;
  {
    // The top-level scalars through the same reader (type checks, file:line); sections and arms below.
    YAML::Node top(YAML::NodeType::Map);
    for (auto it = root.begin(); it != root.end(); ++it) {
      auto k = it->first.as<std::string>();
      if (k != "sft" && k != "eval" && k != "schedule" && k != "report" && k != "arms") top[it->first] = it->second;
    }
    YamlReader r(top, "ablation", file);
    c.visit(r);
    r.finish();
  }
  read_section(root, "sft", c.sft, file);
  read_section(root, "eval", c.eval, file);
  read_section(root, "schedule", c.schedule, file);
  read_section(root, "report", c.report, file);
  for (auto& ov : training_ovs) c.base_overrides.push_back(ov);
  for (auto& ov : c.base_overrides)
    RLVR_CONFIG_CHECK(is_training_override(ov), "base_overrides: '{}' is not section.key=value of a training section", ov);
  for (auto& ov : c.sft.overrides)
    RLVR_CONFIG_CHECK(is_training_override(ov), "sft.overrides: '{}' is not section.key=value of a training section", ov);

  if (root["arms"] && !root["arms"].IsNull()) {
    RLVR_CONFIG_CHECK(root["arms"].IsSequence(), "arms must be a list of {{name, overrides, rewards}} ({})",
                      node_location(root["arms"], file));
    for (size_t i = 0; i < root["arms"].size(); ++i) c.arms.push_back(read_arm(root["arms"][i], i, file));
  }
  for (auto& name : c.controls) {
    Arm a;
    a.name = to_string(parse_control(name));
    a.control = a.name;
    c.arms.push_back(std::move(a));
  }

  // Validation, with the key and value in every message.
  RLVR_CONFIG_CHECK(valid_name(c.name), "{}: name must be letters, digits, _ - . ; got '{}'", file, c.name);
  RLVR_CONFIG_CHECK(!c.arms.empty(), "{}: no arms: give arms: [{{name: ..., overrides: [...]}}] and/or controls: [...]", file);
  RLVR_CONFIG_CHECK(c.arms.size() >= 2, "{}: an ablation needs at least 2 arms (a baseline and one to compare), got {}",
                    file, c.arms.size());
  std::set<std::string> names;
  for (auto& a : c.arms) {
    RLVR_CONFIG_CHECK(valid_name(a.name), "{}: arm name must be letters, digits, _ - . (it names a directory); got '{}'",
                      file, a.name);
    RLVR_CONFIG_CHECK(names.insert(a.name).second, "{}: two arms are named '{}' (a control's arm takes the control's name)",
                      file, a.name);
  }
  if (c.baseline.empty()) c.baseline = c.arms.front().name;
  RLVR_CONFIG_CHECK(names.count(c.baseline), "{}: baseline '{}' is not an arm; arms: [{}]", file, c.baseline,
                    fmt::join(names, ", "));
  RLVR_CONFIG_CHECK(!c.seeds.empty(), "{}: seeds must list at least one seed", file);
  std::set<int64_t> seeds(c.seeds.begin(), c.seeds.end());
  RLVR_CONFIG_CHECK(seeds.size() == c.seeds.size(), "{}: seeds [{}] repeat a seed", file, fmt::join(c.seeds, ", "));
  for (auto s : c.seeds) RLVR_CONFIG_CHECK(s >= 0, "{}: seeds must be >= 0, got {}", file, s);
  RLVR_CONFIG_CHECK(c.control_rate >= 0 && c.control_rate <= 1, "{}: control_rate must be in [0, 1], got {}", file,
                    c.control_rate);
  RLVR_CONFIG_CHECK(c.eval.samples >= 1, "{}: eval.samples must be >= 1, got {}", file, c.eval.samples);
  RLVR_CONFIG_CHECK(c.eval.temperature >= 0, "{}: eval.temperature must be >= 0, got {}", file, c.eval.temperature);
  RLVR_CONFIG_CHECK(c.eval.top_p > 0 && c.eval.top_p <= 1, "{}: eval.top_p must be in (0, 1], got {}", file, c.eval.top_p);
  RLVR_CONFIG_CHECK(c.eval.max_new_tokens >= 0, "{}: eval.max_new_tokens must be >= 0, got {}", file, c.eval.max_new_tokens);
  RLVR_CONFIG_CHECK(c.schedule.parallel >= 1, "{}: schedule.parallel must be >= 1, got {}", file, c.schedule.parallel);
  RLVR_CONFIG_CHECK(c.schedule.threads >= 0, "{}: schedule.threads must be >= 0, got {}", file, c.schedule.threads);
  RLVR_CONFIG_CHECK(c.schedule.nproc_per_run >= 1, "{}: schedule.nproc_per_run must be >= 1, got {}", file,
                    c.schedule.nproc_per_run);
  RLVR_CONFIG_CHECK(c.report.bootstrap >= 100, "{}: report.bootstrap must be >= 100, got {}", file, c.report.bootstrap);
  RLVR_CONFIG_CHECK(c.report.confidence > 0 && c.report.confidence < 1, "{}: report.confidence must be in (0, 1), got {}",
                    file, c.report.confidence);
  RLVR_CONFIG_CHECK(c.report.min_effect >= 0, "{}: report.min_effect must be >= 0, got {}", file, c.report.min_effect);
  RLVR_CONFIG_CHECK(c.report.min_seeds >= 1, "{}: report.min_seeds must be >= 1, got {}", file, c.report.min_seeds);
  return c;
}

std::vector<RewardSpec> control_rubric(Control control, const Config& base, double rate) {
  RewardSpec acc{"math_accuracy", 0.0, {}};
  for (auto& s : base.rewards)
    if (s.name == "math_accuracy") {
      acc = s;
      acc.weight = 0.0;
      break;
    }
  if (control == Control::random_reward)
    return {RewardSpec{"random_reward", 1.0, {{"rate", fmt::format("{}", rate)}}}, acc};
  RewardSpec f{"format", 1.0, {{"style", base.data.templ == "r1_zero" ? "r1" : "boxed"}}};
  for (auto& s : base.rewards)
    if (s.name == "format") {
      f = s;
      f.weight = 1.0;
      break;
    }
  return {f, acc};
}

Config arm_config(const AblationConfig& ab, const Arm& arm, int64_t seed, const std::string& start_model, double rate,
                  const std::string& run_dir) {
  std::vector<std::string> ov = ab.base_overrides;
  if (!start_model.empty()) ov.push_back("model.path=" + start_model);
  ov.insert(ov.end(), arm.overrides.begin(), arm.overrides.end());
  ov.push_back("run.seed=" + std::to_string(seed));
  ov.push_back("run.output_dir=" + run_dir);
  ov.push_back("run.name=" + arm.name + "_seed" + std::to_string(seed));
  Config c = load_config(ab.base_config, ov);
  if (arm.rewards) c.rewards = *arm.rewards;
  if (!arm.control.empty()) {
    Config base = load_config(ab.base_config, ab.base_overrides);
    c.rewards = control_rubric(parse_control(arm.control), base, rate);
  }
  c.run.threads = 0;  // given on the command line (it depends on --parallel, not on the arm)
  validate(c);
  try {
    rewards::Rubric::from_specs(c.rewards);  // unknown functions and bad args fail here, not in a child
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("arm '{}': {}", arm.name, e.what()));
  }
  return c;
}

AblationConfig load_ablation(const std::string& path, const std::vector<std::string>& overrides) {
  RLVR_CONFIG_CHECK(!path.empty(), "rlvr ablate: give the ablation file with -c ablation.yaml");
  std::string text;
  try {
    text = read_file(path);
  } catch (const Error&) {
    throw ConfigError(fmt::format("cannot read ablation file '{}'", path));
  }
  return parse_ablation(text, path, overrides);
}

}  // namespace rlvr::recipes
