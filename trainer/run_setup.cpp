#include "trainer/run_setup.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <map>
#include <set>
#include <thread>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/progress.h"
#include "data/source.h"
#include "data/tasks.h"
#include "trainer/stop_signal.h"

namespace rlvr::trainer {

namespace {
namespace fs = std::filesystem;

// rlvr's own scratch, written into the run directory before training starts (load_policy's builtin tokenizer):
// it does not make the directory hold a run.
bool is_scratch(const std::string& name) { return name == "builtin_tokenizer"; }

std::vector<std::string> run_contents(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (auto& e : fs::directory_iterator(dir, ec))
    if (!is_scratch(e.path().filename().string())) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::string listed(const std::vector<std::string>& v, size_t max = 4) {
  std::vector<std::string> head(v.begin(), v.begin() + static_cast<long>(std::min(max, v.size())));
  return fmt::format("{}{}", fmt::join(head, ", "), v.size() > max ? fmt::format(", ... ({} entries)", v.size()) : "");
}

// "section.key" -> the value in YAML flow form; the rewards list is one entry.
std::map<std::string, std::string> flatten(const std::string& yaml) {
  std::map<std::string, std::string> out;
  YAML::Node root = YAML::Load(yaml);
  auto text = [](const YAML::Node& n) {
    YAML::Emitter e;
    e << YAML::Flow << n;
    return std::string(e.c_str());
  };
  for (auto it = root.begin(); it != root.end(); ++it) {
    const auto sec = it->first.as<std::string>();
    if (it->second.IsMap()) {
      for (auto kv = it->second.begin(); kv != it->second.end(); ++kv)
        out[sec + "." + kv->first.as<std::string>()] = text(kv->second);
    } else {
      out[sec] = text(it->second);
    }
  }
  return out;
}

bool listed_key(const std::vector<std::string>& keys, const std::string& k) {
  for (const auto& p : keys) {
    if (p == k) return true;
    if (!p.empty() && p.back() == '.' && k.rfind(p, 0) == 0) return true;  // "logging." = the whole section
  }
  return false;
}

int64_t checkpoint_step(const fs::path& ckpt) {
  auto j = nlohmann::json::parse(read_file(ckpt / "trainer_state" / "state.json"), nullptr, false);
  return j.is_object() ? j.value("step", int64_t{0}) : 0;
}

bool same_dir(const fs::path& a, const fs::path& b) {
  std::error_code ec;
  return fs::exists(a, ec) && fs::exists(b, ec) && fs::equivalent(a, b, ec);
}

}  // namespace

const std::vector<std::string>& resume_breaking_keys() {
  static const std::vector<std::string> k = {
      "run.seed",          "model.path",        "model.tokenizer",    "model.ref_path",
      "model.chat_template", "data.train",      "data.prompt_key",    "data.answer_key",
      "data.template",     "data.template_string", "data.max_prompt_tokens", "data.shuffle",
      "data.task_difficulty", "data.task_train_size", "rollout.group_size", "train.prompts_per_step"};
  return k;
}

const std::vector<std::string>& resume_free_keys() {
  static const std::vector<std::string> k = {
      "run.name",         "run.output_dir",     "run.device",        "run.threads",      "run.overwrite",
      "run.allow_resume_changes", "train.steps", "train.save_every", "train.keep_last",  "train.eval_every",
      "train.eval_samples", "train.stop_at_accuracy", "train.micro_batch_size", "data.eval",   "data.task_eval_size",
      "rollout.max_batch_seqs", "rollout.max_cached_tokens", "logging.", "distributed."};
  return k;
}

std::vector<ConfigChange> config_changes(const std::string& old_yaml, const std::string& new_yaml) {
  auto a = flatten(old_yaml), b = flatten(new_yaml);
  std::vector<ConfigChange> out;
  std::set<std::string> keys;
  for (auto& [k, v] : a) keys.insert(k), (void)v;
  for (auto& [k, v] : b) keys.insert(k), (void)v;
  for (const auto& k : keys) {
    if (listed_key(resume_free_keys(), k)) continue;
    auto ia = a.find(k), ib = b.find(k);
    std::string va = ia == a.end() ? "<absent>" : ia->second, vb = ib == b.end() ? "<absent>" : ib->second;
    if (va == vb) continue;
    // A key the checkpoint's rlvr did not have yet is reported, never refused.
    bool breaking = ia != a.end() && ib != b.end() && listed_key(resume_breaking_keys(), k);
    out.push_back({k, va, vb, breaking});
  }
  return out;
}

RunContext setup_run(const Config& cfg, const std::string& kind, const std::string& resume) {
  RunContext ctx;
  ctx.cfg = cfg;
  log::set_level(log::parse_level(cfg.logging.level));
  ctx.run_dir = cfg.output_dir();
  ctx.checkpoints_dir = ctx.run_dir / "checkpoints";
  ctx.resolved_yaml = to_yaml(cfg);

  // The run-directory policy, on every rank before the rendezvous (so that no rank sees rank 0's first
  // write) and before anything is written (a refused run leaves the directory as it was).
  bool wipe = false;
  std::vector<ConfigChange> changes;
  std::vector<fs::path> newer;
  int64_t resumed_step = 0;
  if (resume.empty()) {
    auto names = run_contents(ctx.run_dir);
    if (!names.empty()) {
      RLVR_CONFIG_CHECK(cfg.run.overwrite,
                        "run directory '{}' already holds a run ({}); continue it with --resume, replace it with "
                        "--overwrite, or choose another run.output_dir / run.name",
                        ctx.run_dir.string(), listed(names));
      RLVR_CONFIG_CHECK(fs::exists(ctx.run_dir / "config.yaml"),
                        "--overwrite: '{}' is not an rlvr run directory (no config.yaml; it holds {}); refusing to "
                        "delete it", ctx.run_dir.string(), listed(names));
      wipe = true;
    }
  } else {
    ctx.resume_dir = resolve_resume(resume, ctx.checkpoints_dir);
    resumed_step = checkpoint_step(ctx.resume_dir);
    const auto old_cfg = ctx.resume_dir / "trainer_state" / "config.yaml";
    if (fs::exists(old_cfg)) {
      try {
        changes = config_changes(read_file(old_cfg), ctx.resolved_yaml);
      } catch (const YAML::Exception& e) {
        throw Error(fmt::format("--resume: cannot read the checkpoint's config '{}': {}", old_cfg.string(), e.msg));
      }
    }
    std::vector<std::string> broken;
    for (const auto& c : changes)
      if (c.breaking) broken.push_back(fmt::format("{}: {} -> {}", c.key, c.old_value, c.new_value));
    RLVR_CONFIG_CHECK(broken.empty() || cfg.run.allow_resume_changes,
                      "--resume {}: {} would make it another run than the one checkpointed; resume with the "
                      "checkpoint's values, start a new run, or set run.allow_resume_changes=true",
                      ctx.resume_dir.string(), listed(broken));
    if (same_dir(ctx.resume_dir.parent_path(), ctx.checkpoints_dir)) {
      std::vector<std::string> names;
      for (auto& [step, dir] : list_checkpoints(ctx.checkpoints_dir))
        if (step > resumed_step) newer.push_back(dir), names.push_back(dir.filename().string());
      RLVR_CONFIG_CHECK(newer.empty() || cfg.run.overwrite,
                        "--resume {}: the run has later checkpoints ({}) that resuming from step {} would replace; "
                        "resume latest, or add --overwrite to delete them",
                        ctx.resume_dir.string(), listed(names), resumed_step);
    }
  }

  at::Device want = resolve_device(cfg.run.device);
  ctx.comm = dist::make_communicator(cfg.distributed, want.is_cuda() ? at::Device(at::kCUDA) : want);
  ctx.device = want.is_cuda() ? ctx.comm->device() : want;
  log::set_rank(ctx.comm->rank());
  set_progress_enabled(cfg.logging.progress && ctx.comm->is_main());
  set_progress_interval(cfg.logging.progress_every_s);
  if (ctx.comm->is_main()) {
    if (wipe) fs::remove_all(ctx.run_dir);
    fs::create_directories(ctx.run_dir);
    log::add_file_sink(ctx.run_dir / (kind + ".log"));
    if (wipe) log::warn("--overwrite: deleted the earlier run in {}", ctx.run_dir.string());
    for (const auto& p : clean_run_debris(ctx.run_dir))
      log::warn("removed debris of an interrupted run: {}", p.string());
    for (const auto& p : newer) {
      fs::remove_all(p);
      log::warn("--overwrite: deleted checkpoint {} (later than the resumed step {})", p.string(), resumed_step);
    }
    if (!ctx.resume_dir.empty()) {
      nlohmann::ordered_json rec;
      rec["resumed_from"] = ctx.resume_dir.string();
      rec["step"] = resumed_step;
      rec["changes"] = nlohmann::ordered_json::array();
      for (const auto& c : changes) {
        log::warn("--resume: {} changed from {} to {} (applies from step {}){}", c.key, c.old_value, c.new_value,
                  resumed_step + 1, c.breaking ? "; allowed by run.allow_resume_changes" : "");
        rec["changes"].push_back({{"key", c.key}, {"old", c.old_value}, {"new", c.new_value}, {"breaking", c.breaking}});
      }
      CheckedAppender(ctx.run_dir / "resumes.jsonl").append_line(rec.dump());
    }
    write_file_atomic(ctx.run_dir / "config.yaml", ctx.resolved_yaml);
  }
  if (cfg.run.threads > 0) {
    const unsigned hw = std::thread::hardware_concurrency();
    if (hw > 0 && static_cast<unsigned>(cfg.run.threads) > hw)
      log::warn("run.threads = {} is more than the {} hardware threads of this machine", cfg.run.threads, hw);
    at::set_num_threads(cfg.run.threads);
  }
  torch::manual_seed(cfg.run.seed);
  install_stop_handlers();
  log::info("rlvr {}: run dir {}, device {}, world size {} ({}), {} CPU threads", kind, ctx.run_dir.string(),
            ctx.device.str(), ctx.comm->world_size(), ctx.comm->backend(), at::get_num_threads());
  return ctx;
}

data::SourceOptions source_options(const Config& cfg, bool eval_split) {
  data::SourceOptions o;
  o.load.mapping.prompt_key = cfg.data.prompt_key;
  o.load.mapping.answer_key = cfg.data.answer_key;
  o.difficulty = cfg.data.task_difficulty;
  o.seed = static_cast<uint64_t>(cfg.run.seed);
  o.count = eval_split ? cfg.data.task_eval_size : cfg.data.task_train_size;
  o.split = eval_split ? data::Split::held_out : data::Split::train;
  return o;
}

data::Dataset load_train_data(const Config& cfg) {
  auto o = source_options(cfg, /*eval_split=*/false);
  data::LoadReport rep;
  auto ds = data::load_source(cfg.data.train, o, &rep);
  RLVR_CHECK(!ds.empty(), "data.train '{}' has no usable records", cfg.data.train);
  log::info("train data: {} records from {}", ds.size(), cfg.data.train);
  return ds;
}

data::Dataset load_eval_data(const Config& cfg) {
  auto src = data::eval_source(cfg.data.train, cfg.data.eval);
  if (src.empty()) return {};
  auto ds = data::load_source(src, source_options(cfg, /*eval_split=*/true));
  if (!data::builtin_task_name(src).empty() || cfg.data.task_eval_size <= 0) return ds;
  if (static_cast<int64_t>(ds.size()) > cfg.data.task_eval_size) ds.resize(cfg.data.task_eval_size);
  return ds;
}

void broadcast_parameters(dist::Communicator& comm, model::CausalLM& model) {
  if (comm.world_size() == 1) return;
  torch::NoGradGuard ng;
  auto params = model.parameters();
  comm.broadcast(params, 0);
}

bool any_rank_stopping(dist::Communicator& comm) {
  double v = stop_requested() ? 1.0 : 0.0;
  return comm.all_reduce_scalar(v, dist::ReduceOp::max) > 0;
}

}  // namespace rlvr::trainer

namespace rlvr::trainer {

MetricMap evaluate_on_ranks(dist::Communicator& comm, const Policy& policy, const data::Dataset& problems,
                            const DataConfig& data_cfg, const EvalOptions& opts) {
  MetricMap out;
  if (problems.empty()) return out;
  data::Dataset mine;
  for (size_t i = comm.rank(); i < problems.size(); i += comm.world_size()) mine.push_back(problems[i]);
  const double weight = static_cast<double>(mine.size());
  if (mine.empty()) mine.push_back(problems.front());  // same metric names as the other ranks, weight 0
  auto local = evaluate(policy, mine, data_cfg, opts).metrics;
  std::vector<std::string> keys;
  std::vector<double> vals;
  for (auto& [k, v] : local) {  // std::map: the same key order on every rank
    if (k == "problems") continue;
    keys.push_back(k);
    vals.push_back(v * weight);
  }
  vals = comm.all_reduce_scalars(vals, dist::ReduceOp::sum);
  for (size_t i = 0; i < keys.size(); ++i) out["eval/" + keys[i]] = vals[i] / static_cast<double>(problems.size());
  return out;
}

std::unique_ptr<dist::OverlappedGradReducer> make_grad_reducer(dist::Communicator& comm, const DistributedConfig& d,
                                                               const TrainOptimizer& opt,
                                                               const std::vector<at::Tensor>& params) {
  if (comm.world_size() < 2 || !d.overlap_grad_reduce || opt.reduces_gradients() || comm.backend() != "gloo")
    return nullptr;
  if (opt.has_masters()) {  // bf16 weights: the parameters' hooks move each grad into fp32; reduced after the backward
    if (comm.is_main()) log::info("bf16 weights: the fp32 gradients are all-reduced after the backward (no overlap)");
    return nullptr;
  }
  auto r = std::make_unique<dist::OverlappedGradReducer>(comm, params, dist::ReduceOp::sum);
  if (comm.is_main()) log::info("gradient all-reduce overlapped with the backward: {} bucket(s)", r->buckets());
  return r;
}

std::string checkpoint_on_rank0(const RunContext& ctx, const Policy& policy, TrainOptimizer* opt,
                                const TrainerState& state) {
  std::string dir;
  if (opt != nullptr) opt->prepare_save();
  if (ctx.comm->is_main()) {
    dir = save_checkpoint(ctx.checkpoints_dir, policy, opt, state, ctx.resolved_yaml, ctx.cfg.train.keep_last).string();
    log::info("checkpoint written: {}", dir);
  }
  ctx.comm->barrier();
  return dir;
}

}  // namespace rlvr::trainer
