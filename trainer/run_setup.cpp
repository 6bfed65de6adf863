#include "trainer/run_setup.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/progress.h"
#include "data/source.h"
#include "data/tasks.h"
#include "trainer/stop_signal.h"

namespace rlvr::trainer {

RunContext setup_run(const Config& cfg, const std::string& kind) {
  RunContext ctx;
  ctx.cfg = cfg;
  log::set_level(log::parse_level(cfg.logging.level));
  at::Device want = resolve_device(cfg.run.device);
  ctx.comm = dist::make_communicator(cfg.distributed, want.is_cuda() ? at::Device(at::kCUDA) : want);
  ctx.device = want.is_cuda() ? ctx.comm->device() : want;
  log::set_rank(ctx.comm->rank());
  set_progress_enabled(cfg.logging.progress && ctx.comm->is_main());
  set_progress_interval(cfg.logging.progress_every_s);
  ctx.run_dir = cfg.output_dir();
  ctx.checkpoints_dir = ctx.run_dir / "checkpoints";
  ctx.resolved_yaml = to_yaml(cfg);
  if (ctx.comm->is_main()) {
    std::filesystem::create_directories(ctx.run_dir);
    log::add_file_sink(ctx.run_dir / (kind + ".log"));
    write_file_atomic(ctx.run_dir / "config.yaml", ctx.resolved_yaml);
  }
  if (cfg.run.threads > 0) at::set_num_threads(cfg.run.threads);
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
