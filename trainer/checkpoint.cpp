#include "trainer/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <regex>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"

namespace rlvr::trainer {
namespace fs = std::filesystem;

std::vector<std::pair<int64_t, fs::path>> list_checkpoints(const fs::path& dir) {
  std::vector<std::pair<int64_t, fs::path>> out;
  if (!fs::is_directory(dir)) return out;
  static const std::regex re("step_([0-9]+)");
  for (auto& e : fs::directory_iterator(dir)) {
    std::smatch m;
    auto name = e.path().filename().string();
    if (e.is_directory() && std::regex_match(name, m, re) && fs::exists(e.path() / "trainer_state" / "state.json"))
      out.emplace_back(std::stoll(m[1]), e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

namespace {
// "<anything>.old.<digits>": a directory moved aside to be deleted (prune, or save_pretrained's swap).
bool is_moved_aside(const std::string& name, long* pid) {
  auto pos = name.rfind(".old.");
  if (pos == std::string::npos || pos + 5 >= name.size()) return false;
  auto digits = name.substr(pos + 5);
  if (digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 9) return false;
  *pid = std::stol(digits);
  return true;
}

// Deletes a checkpoint directory: renamed first (atomic), so that it is never seen half-deleted as step_<N>.
void remove_checkpoint(const fs::path& dir) {
  auto aside = dir.parent_path() / fmt::format(".{}.old.{}", dir.filename().string(), ::getpid());
  std::error_code ec;
  fs::rename(dir, aside, ec);
  fs::remove_all(ec ? dir : aside, ec);
  if (ec) log::warn("could not delete old checkpoint {}: {}", dir.string(), ec.message());
}
}  // namespace

std::vector<fs::path> clean_run_debris(const fs::path& run_dir) {
  std::vector<fs::path> removed;
  static const std::regex step_re("step_([0-9]+)");
  for (const auto& dir : {run_dir, run_dir / "checkpoints"}) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    std::vector<fs::path> doomed;
    for (auto& e : fs::directory_iterator(dir, ec)) {
      const auto name = e.path().filename().string();
      long pid = 0;
      bool debris = false;
      if (is_temporary_name(name, &pid) || is_moved_aside(name, &pid)) debris = !process_alive(pid);
      else if (dir != run_dir && e.is_directory() && std::regex_match(name, step_re))
        debris = !fs::exists(e.path() / "trainer_state" / "state.json");  // a prune killed midway (older rlvr)
      if (debris) doomed.push_back(e.path());
    }
    for (auto& p : doomed) {
      fs::remove_all(p, ec);
      if (!ec) removed.push_back(p);
      else log::warn("could not remove debris {}: {}", p.string(), ec.message());
    }
  }
  return removed;
}

fs::path save_checkpoint(const fs::path& checkpoints_dir, const Policy& policy, const TrainOptimizer* opt,
                         const TrainerState& state, const std::string& resolved_config_yaml, int keep_last) {
  fs::create_directories(checkpoints_dir);
  auto final_dir = checkpoints_dir / fmt::format("step_{}", state.step);
  auto tmp = checkpoints_dir / fmt::format(".step_{}.tmp.{}", state.step, ::getpid());
  fs::remove_all(tmp);
  try {
    policy.model->save_pretrained(tmp, policy.tokenizer_dir);
    auto ts = tmp / "trainer_state";
    fs::create_directories(ts);
    if (opt) opt->save(ts.string());
    nlohmann::json j;
    j["step"] = state.step;
    j["data_cursor"] = state.data_cursor;
    j["extra"] = state.extra;
    j["format"] = "rlvr-trainer-state-v1";
    write_file_atomic(ts / "state.json", j.dump(2));
    write_file_atomic(ts / "config.yaml", resolved_config_yaml);
    if (!state.prompt_history.is_null()) write_file_atomic(ts / "prompt_history.json", state.prompt_history.dump());
    if (fs::exists(final_dir)) remove_checkpoint(final_dir);
    fs::rename(tmp, final_dir);
  } catch (const std::exception& e) {
    // A failed checkpoint (disk full, I/O error) must not keep a model copy around on a disk that is full.
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw Error(fmt::format("checkpoint step_{} not written ({}); the earlier checkpoints under {} are intact",
                            state.step, e.what(), checkpoints_dir.string()));
  }
  auto all = list_checkpoints(checkpoints_dir);
  for (size_t i = 0; i + keep_last < all.size(); ++i) remove_checkpoint(all[i].second);
  return final_dir;
}

fs::path resolve_resume(const std::string& what, const fs::path& checkpoints_dir) {
  if (what.empty() || what == "latest") {
    auto all = list_checkpoints(checkpoints_dir);
    RLVR_CONFIG_CHECK(!all.empty(), "--resume latest: no checkpoint under '{}'", checkpoints_dir.string());
    return all.back().second;
  }
  RLVR_CONFIG_CHECK(fs::exists(fs::path(what) / "trainer_state" / "state.json"),
                    "--resume '{}': not a checkpoint directory (no trainer_state/state.json)", what);
  return what;
}

TrainerState load_trainer_state(const fs::path& ckpt_dir, TrainOptimizer* opt) {
  auto ts = ckpt_dir / "trainer_state";
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(ts / "state.json"));
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("corrupt trainer state '{}': {}", (ts / "state.json").string(), e.what()));
  }
  TrainerState s;
  s.step = j.value("step", int64_t{0});
  s.data_cursor = j.value("data_cursor", nlohmann::json::object());
  s.extra = j.value("extra", nlohmann::json::object());
  if (fs::exists(ts / "prompt_history.json")) {
    try {
      s.prompt_history = nlohmann::json::parse(read_file(ts / "prompt_history.json"));
    } catch (const nlohmann::json::exception& e) {
      throw Error(fmt::format("corrupt trainer state '{}': {}", (ts / "prompt_history.json").string(), e.what()));
    }
  }
  if (opt) opt->load(ts.string());
  return s;
}

}  // namespace rlvr::trainer
