#include "trainer/config.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "common/error.h"
#include "common/fs.h"
#include "data/selection.h"
#include "trainer/choices.h"

namespace rlvr {
namespace {

const std::vector<std::string> kSections = {"run", "model", "data", "rollout", "rewards", "algorithm",
                                            "optim", "train", "distributed", "logging"};

template <class Section>
void read_section(const YAML::Node& root, const char* name, Section& s, const std::string& file) {
  YamlReader r(root[name], name, file);
  s.visit(r);
  r.finish();
}

template <class Section>
std::vector<std::string> keys_of() {
  Section s;
  KeyLister l;
  s.visit(l);
  return l.keys;
}

std::vector<std::string> section_keys(const std::string& section) {
  if (section == "run") return keys_of<RunConfig>();
  if (section == "model") return keys_of<ModelConfig>();
  if (section == "data") return keys_of<DataConfig>();
  if (section == "rollout") return keys_of<RolloutConfig>();
  if (section == "algorithm") return keys_of<AlgorithmConfig>();
  if (section == "optim") return keys_of<OptimConfig>();
  if (section == "train") return keys_of<TrainConfig>();
  if (section == "distributed") return keys_of<DistributedConfig>();
  if (section == "logging") return keys_of<LoggingConfig>();
  return {};
}

std::string did_you_mean(const std::string& key, const std::vector<std::string>& known, const std::string& prefix) {
  auto g = closest_key(key, known);
  if (!g.empty()) return fmt::format("; did you mean '{}{}'?", prefix, g);
  return fmt::format("; known: [{}]", fmt::join(known, ", "));
}

std::vector<RewardSpec> read_rewards(const YAML::Node& n, const std::string& file) {
  std::vector<RewardSpec> out;
  if (!n || n.IsNull()) return out;
  RLVR_CONFIG_CHECK(n.IsSequence(), "rewards must be a list of {{name, weight, args}} ({})", node_location(n, file));
  for (size_t i = 0; i < n.size(); ++i) {
    RewardSpec s;
    YamlReader r(n[i], fmt::format("rewards[{}]", i), file);
    s.visit(r);
    r.finish();
    RLVR_CONFIG_CHECK(!s.name.empty(), "rewards[{}].name is missing ({})", i, node_location(n[i], file));
    out.push_back(std::move(s));
  }
  return out;
}

// "section.key=value" applied onto the YAML tree; rewards.<name>.weight / rewards.<name>.<arg> address
// the reward function by name.
void apply_override(YAML::Node& root, const std::string& ov) {
  auto eq = ov.find('=');
  RLVR_CONFIG_CHECK(eq != std::string::npos && eq > 0, "override '{}' must look like section.key=value", ov);
  std::string path = ov.substr(0, eq), value = ov.substr(eq + 1);
  auto dot = path.find('.');
  RLVR_CONFIG_CHECK(dot != std::string::npos, "override '{}' must look like section.key=value", ov);
  std::string section = path.substr(0, dot), key = path.substr(dot + 1);
  if (std::find(kSections.begin(), kSections.end(), section) == kSections.end())
    throw ConfigError(fmt::format("unknown section '{}' in override '{}'{}", section, ov, did_you_mean(section, kSections, "")));
  YAML::Node val = (value.size() > 0 && value[0] == '[') ? load_override_value(value, fmt::format("override '{}'", ov))
                                                         : YAML::Node(value);
  if (section == "rewards") {
    auto d2 = key.find('.');
    RLVR_CONFIG_CHECK(d2 != std::string::npos, "override '{}' must be rewards.<name>.weight=W or rewards.<name>.<arg>=V", ov);
    std::string name = key.substr(0, d2), field = key.substr(d2 + 1);
    YAML::Node list = root["rewards"];
    bool found = false;
    std::vector<std::string> names;
    for (size_t i = 0; list && list.IsSequence() && i < list.size(); ++i) {
      YAML::Node item = list[i];
      auto nm = item["name"] ? item["name"].as<std::string>() : "";
      names.push_back(nm);
      if (nm != name) continue;
      found = true;
      if (field == "weight") item["weight"] = val;
      else item["args"][field] = val;
    }
    if (!found)
      throw ConfigError(fmt::format("override '{}': no reward named '{}' in the config{}", ov, name,
                                    did_you_mean(name, names, "")));
    return;
  }
  auto known = section_keys(section);
  if (std::find(known.begin(), known.end(), key) == known.end())
    throw ConfigError(fmt::format("unknown key '{}' (command-line override){}", path, did_you_mean(key, known, section + ".")));
  root[section][key] = val;
}

}  // namespace

std::string Config::output_dir() const { return run.output_dir.empty() ? "runs/" + run.name : run.output_dir; }

Config parse_config(const std::string& text, const std::string& file, const std::vector<std::string>& overrides) {
  YAML::Node root;
  try {
    std::vector<YAML::Node> docs;
    if (!text.empty()) docs = YAML::LoadAll(text);
    for (size_t i = 1; i < docs.size(); ++i)  // yaml-cpp's Load would keep the first document, silently
      RLVR_CONFIG_CHECK(docs[i].IsNull(), "{}: a second YAML document (after '---'); a config file holds one",
                        node_location(docs[i], file));
    root = docs.empty() ? YAML::Node(YAML::NodeType::Map) : docs.front();
  } catch (const YAML::Exception& e) {
    throw ConfigError(fmt::format("{}:{}: YAML syntax error: {}", file, e.mark.line + 1, e.msg));
  }
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  RLVR_CONFIG_CHECK(root.IsMap(), "{}: the config must be a mapping of sections", file);
  check_no_duplicate_keys(root, "", file);
  for (auto it = root.begin(); it != root.end(); ++it) {
    auto k = it->first.as<std::string>();
    if (std::find(kSections.begin(), kSections.end(), k) == kSections.end())
      throw ConfigError(fmt::format("unknown section '{}' ({}){}", k, node_location(it->first, file),
                                    did_you_mean(k, kSections, "")));
  }
  if (!root["rewards"]) {  // overrides address the default rubric by name
    YAML::Node item;
    item["name"] = "math_accuracy";
    item["weight"] = 1.0;
    root["rewards"].push_back(item);
  }
  for (const auto& ov : overrides) apply_override(root, ov);

  Config c;
  read_section(root, "run", c.run, file);
  read_section(root, "model", c.model, file);
  read_section(root, "data", c.data, file);
  read_section(root, "rollout", c.rollout, file);
  c.rewards = read_rewards(root["rewards"], file);
  read_section(root, "algorithm", c.algorithm, file);
  read_section(root, "optim", c.optim, file);
  read_section(root, "train", c.train, file);
  read_section(root, "distributed", c.distributed, file);
  read_section(root, "logging", c.logging, file);
  // verl's names of the KL estimators, stored under ours (the resolved config, checkpoints and resume compare those)
  auto& kl = c.algorithm.kl_estimator;
  if (kl == "kl") kl = "k1";
  else if (kl == "mse") kl = "k2";
  else if (kl == "low_var_kl") kl = "k3";
  validate(c);
  return c;
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  if (path.empty()) return parse_config("", "<defaults>", overrides);
  std::string text;
  try {
    text = read_file(path);
  } catch (const Error& e) {
    throw ConfigError(fmt::format("cannot read config file '{}' ({})", path, e.what()));
  }
  return parse_config(text, path, overrides);
}

namespace {
void one_of(const std::string& key, const std::string& v, const std::vector<std::string>& allowed) {
  choices::index_of(key.c_str(), allowed, v);
}
template <class Section>
void check_ranges(const char* name, const Section& s) {
  Section copy = s;  // visit() takes the fields by reference
  RangeChecker r(name);
  copy.visit(r);
}

void check_ranges(const Config& cc) {
  check_ranges("run", cc.run);
  check_ranges("model", cc.model);
  check_ranges("data", cc.data);
  check_ranges("rollout", cc.rollout);
  for (size_t i = 0; i < cc.rewards.size(); ++i) check_ranges(fmt::format("rewards[{}]", i).c_str(), cc.rewards[i]);
  check_ranges("algorithm", cc.algorithm);
  check_ranges("optim", cc.optim);
  check_ranges("train", cc.train);
  check_ranges("distributed", cc.distributed);
  check_ranges("logging", cc.logging);
}

}  // namespace

void validate(const Config& c) {
  check_ranges(c);
  one_of("run.device", c.run.device, choices::device());
  {  // run.name becomes a path component of runs/<name>: "" or ".." would write into runs/ or above it
    const auto& n = c.run.name;
    bool ok = !n.empty() && n.front() != '/';
    for (size_t b = 0; ok && b <= n.size();) {
      size_t e = n.find('/', b);
      if (e == std::string::npos) e = n.size();
      auto part = n.substr(b, e - b);
      ok = !part.empty() && part != "." && part != "..";
      b = e + 1;
    }
    RLVR_CONFIG_CHECK(ok || !c.run.output_dir.empty(),
                      "run.name must be a relative name without empty, '.' or '..' parts (it names runs/<name>), "
                      "got '{}'", n);
  }
  one_of("model.dtype", c.model.dtype, choices::dtype());
  if (c.model.chat_template.find("{prompt}") == std::string::npos)  // else a raw chat template string
    one_of("model.chat_template", c.model.chat_template, {"none", "chatml", "qwen2.5", "qwen3", "qwen3-nothink", "llama3"});
  one_of("data.template", c.data.templ, {"r1_zero", "qwen_math", "chat", "raw"});
  RLVR_CONFIG_CHECK(c.data.templ != "raw" || c.data.template_string.find("{prompt}") != std::string::npos,
                    "data.template_string must contain {{prompt}}, got '{}'", c.data.template_string);
  one_of("data.selection", c.data.selection, data::selection_policy_names());
  RLVR_CONFIG_CHECK(c.data.selection_band_lo <= c.data.selection_band_hi,
                    "data.selection_band_lo ({}) must be <= data.selection_band_hi ({})", c.data.selection_band_lo,
                    c.data.selection_band_hi);
  RLVR_CONFIG_CHECK(!c.rewards.empty(), "rewards must name at least one reward function");
  one_of("algorithm.advantage", c.algorithm.advantage, choices::advantage());
  one_of("algorithm.scale_rewards", c.algorithm.scale_rewards, choices::scale_rewards());
  one_of("algorithm.loss_agg", c.algorithm.loss_agg, choices::loss_agg());
  one_of("algorithm.kl_estimator", c.algorithm.kl_estimator, choices::kl_estimator());  // kl | mse | low_var_kl mapped on load
  one_of("optim.schedule", c.optim.schedule, choices::lr_schedule());
  // Completions per step are counted in 32-bit integers throughout the loop (and each one is a KV-cache slot).
  RLVR_CONFIG_CHECK(int64_t{c.train.prompts_per_step} * c.rollout.group_size <= (int64_t{1} << 24),
                    "train.prompts_per_step x rollout.group_size = {} x {} completions per step; at most {}",
                    c.train.prompts_per_step, c.rollout.group_size, int64_t{1} << 24);
  RLVR_CONFIG_CHECK(c.train.prompts_per_step % c.train.mini_batches == 0,
                    "train.prompts_per_step ({}) must be divisible by train.mini_batches ({})",
                    c.train.prompts_per_step, c.train.mini_batches);
  one_of("distributed.backend", c.distributed.backend, choices::dist_backend());
  one_of("logging.level", c.logging.level, {"debug", "info", "warn", "error"});
  RLVR_CONFIG_CHECK(std::isfinite(c.logging.progress_every_s) && c.logging.progress_every_s >= 0,
                    "logging.progress_every_s must be a number of seconds >= 0, got {}", c.logging.progress_every_s);
  RLVR_CONFIG_CHECK(!c.train.share_prompt || c.train.max_tokens_per_micro_batch == 0,
                    "train.share_prompt plans micro-batches by train.micro_batch_size in group order: set "
                    "train.max_tokens_per_micro_batch to 0 (it is {})", c.train.max_tokens_per_micro_batch);
  RLVR_CONFIG_CHECK(c.train.stop_at_accuracy == 0 || c.train.eval_every > 0,
                    "train.stop_at_accuracy {} reads the periodic eval: set train.eval_every > 0 too",
                    c.train.stop_at_accuracy);
}

std::string to_yaml(const Config& cc) {
  Config c = cc;
  YAML::Emitter out;
  out << YAML::BeginMap;
  auto section = [&](const char* name, auto& s) {
    out << YAML::Key << name << YAML::Value << YAML::BeginMap;
    YamlWriter w(out);
    s.visit(w);
    out << YAML::EndMap;
  };
  section("run", c.run);
  section("model", c.model);
  section("data", c.data);
  section("rollout", c.rollout);
  out << YAML::Key << "rewards" << YAML::Value << YAML::BeginSeq;
  for (auto& r : c.rewards) {
    out << YAML::BeginMap;
    YamlWriter w(out);
    r.visit(w);
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
  section("algorithm", c.algorithm);
  section("optim", c.optim);
  section("train", c.train);
  section("distributed", c.distributed);
  section("logging", c.logging);
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

void check_context_budget(const Config& c, int64_t max_position_embeddings) {
  const int64_t need = int64_t{c.data.max_prompt_tokens} + c.rollout.max_new_tokens;
  RLVR_CONFIG_CHECK(need <= max_position_embeddings,
                    "data.max_prompt_tokens {} + rollout.max_new_tokens {} = {} tokens exceeds the context of model "
                    "'{}' (max_position_embeddings {}); lower one of them",
                    c.data.max_prompt_tokens, c.rollout.max_new_tokens, need, c.model.path, max_position_embeddings);
}

}  // namespace rlvr
