// Tests of rlvr::dist: the local communicator, the environment contract, rendezvous errors, and real
// multi-process Gloo runs on loopback. Multi-process cases re-run this test binary as N ranks through
// launch_local_world (which hosts the store on a free port) with the hidden test case "dist worker";
// RLVR_DIST_SCENARIO says what the ranks do. Expected values are derived by hand from the rank ids.
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "common/error.h"
#include "trainer/dist/communicator.h"
#include "trainer/dist/launcher.h"
#include "trainer/dist/overlap.h"
#include "trainer/dist/zero.h"

using namespace rlvr;
using namespace rlvr::dist;

namespace {

std::string self_exe() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  REQUIRE(n > 0);
  return std::string(buf, static_cast<size_t>(n));
}

// Runs `scenario` on n ranks of this binary; every rank's output is forwarded with a "[rank r]" prefix.
LaunchResult run_world(const std::string& scenario, int n, std::vector<std::pair<std::string, std::string>> env = {},
                       bool host_store = true) {
  LaunchOptions o;
  o.nproc = n;
  o.exe = self_exe();
  o.args = {"dist worker"};
  o.host_store = host_store;
  o.prefix_rank0 = true;
  o.grace_s = 3;
  o.max_time_s = 120;  // a hung test fails instead of blocking CI
  o.env = std::move(env);
  o.env.push_back({"RLVR_DIST_SCENARIO", scenario});
  o.env.push_back({"OMP_NUM_THREADS", "1"});
  return launch_local_world(o);
}

std::string join_ints(const std::vector<int>& v) {
  std::string s;
  for (int x : v) s += std::to_string(x) + " ";
  return s;
}

void require_all_ok(const LaunchResult& r, int n) {
  INFO("rank statuses: " << join_ints(r.rank_status));
  REQUIRE(r.rank_status.size() == static_cast<size_t>(n));
  for (int s : r.rank_status) CHECK(s == 0);
  CHECK(r.failed_rank == -1);
  CHECK(r.exit_code == 0);
}

at::Tensor f64(std::vector<double> v) { return at::tensor(v, at::kDouble); }

// Scoped environment variable (restored on exit).
struct EnvVar {
  std::string name;
  std::optional<std::string> old;
  EnvVar(std::string n, const char* value) : name(std::move(n)) {
    if (const char* o = std::getenv(name.c_str())) old = o;
    if (value) {
      setenv(name.c_str(), value, 1);
    } else {
      unsetenv(name.c_str());
    }
  }
  ~EnvVar() {
    if (old) {
      setenv(name.c_str(), old->c_str(), 1);
    } else {
      unsetenv(name.c_str());
    }
  }
};

// Clears every variable world_from_env() reads, for the duration of a test.
struct CleanEnv {
  std::vector<std::unique_ptr<EnvVar>> vars;
  CleanEnv() {
    for (const char* n : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                          "TORCHELASTIC_USE_AGENT_STORE", "TORCHELASTIC_RESTART_COUNT", "SLURM_PROCID",
                          "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_STEP_ID", "SLURM_STEP_NODELIST",
                          "SLURM_JOB_NODELIST", "SLURM_NODELIST", "SLURM_JOB_ID", "SLURM_NTASKS_PER_NODE",
                          "RLVR_DIST_IGNORE_SLURM", "RLVR_DIST_FORCE_BACKEND"}) {
      vars.push_back(std::make_unique<EnvVar>(n, nullptr));
    }
  }
  void set(const char* n, const char* v) { vars.push_back(std::make_unique<EnvVar>(n, v)); }
};

}  // namespace

// ------------------------------------------------------------------------------------------------
// The worker: runs inside each rank process.

namespace {

double elapsed_s(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void scenario_collectives(Communicator& c) {
  const int W = c.world_size(), r = c.rank();
  const double S = W * (W - 1) / 2.0;  // sum of ranks
  REQUIRE(c.backend() == "gloo");
  REQUIRE(c.device().is_cpu());

  // all_reduce sum / avg / max / min, exact.
  at::Tensor a = at::arange(6, at::kFloat) * (r + 1);  // [6]
  c.all_reduce(a, ReduceOp::sum);
  CHECK(at::equal(a, at::arange(6, at::kFloat) * (S + W)));
  at::Tensor b = at::full({4}, r + 1.0, at::kDouble);
  c.all_reduce(b, ReduceOp::avg);
  CHECK(at::equal(b, at::full({4}, (W + 1) / 2.0, at::kDouble)));
  at::Tensor m = at::tensor({int64_t(r), int64_t(-r), int64_t(10 * r)});
  at::Tensor n = m.clone();
  c.all_reduce(m, ReduceOp::max);
  c.all_reduce(n, ReduceOp::min);
  CHECK(at::equal(m, at::tensor({int64_t(W - 1), int64_t(0), int64_t(10 * (W - 1))})));
  CHECK(at::equal(n, at::tensor({int64_t(0), int64_t(-(W - 1)), int64_t(0)})));
  at::Tensor bf = at::full({3}, r + 1.0, at::kBFloat16);  // small integers are exact in bf16
  c.all_reduce(bf, ReduceOp::sum);
  CHECK(at::equal(bf, at::full({3}, S + W, at::kBFloat16)));
  // integer avg is refused before any communication (every rank throws the same way)
  at::Tensor iv = at::ones({2}, at::kLong);
  CHECK_THROWS_AS(c.all_reduce(iv, ReduceOp::avg), Error);

  // Non-contiguous in place: a transposed view.
  at::Tensor base = at::arange(12, at::kFloat).view({3, 4});  // [3, 4]
  at::Tensor tv = base.t();                                   // [4, 3], non-contiguous
  REQUIRE_FALSE(tv.is_contiguous());
  c.all_reduce(tv, ReduceOp::sum);
  CHECK(at::equal(base, at::arange(12, at::kFloat).view({3, 4}) * W));

  // Several tensors, mixed dtypes, one call.
  std::vector<at::Tensor> many{at::full({5}, r, at::kFloat), at::full({3}, 2 * r, at::kLong),
                               at::full({2, 2}, r + 0.5, at::kFloat)};
  c.all_reduce(many, ReduceOp::sum);
  CHECK(at::equal(many[0], at::full({5}, S, at::kFloat)));
  CHECK(at::equal(many[1], at::full({3}, 2 * S, at::kLong)));
  CHECK(at::equal(many[2], at::full({2, 2}, S + 0.5 * W, at::kFloat)));

  // Scalars.
  CHECK(c.all_reduce_scalar(r, ReduceOp::sum) == S);
  auto sc = c.all_reduce_scalars({double(r), 1.0, -double(r)}, ReduceOp::max);
  CHECK(sc == std::vector<double>{double(W - 1), 1.0, 0.0});

  // broadcast from the last rank, and a list from rank 0.
  at::Tensor bc = at::full({3}, double(r), at::kFloat);
  c.broadcast(bc, W - 1);
  CHECK(at::equal(bc, at::full({3}, double(W - 1), at::kFloat)));
  std::vector<at::Tensor> bl{at::full({2}, 7.0 * r, at::kDouble), at::full({1, 3}, r, at::kInt)};
  c.broadcast(bl, 0);
  CHECK(at::equal(bl[0], at::zeros({2}, at::kDouble)));
  CHECK(at::equal(bl[1], at::zeros({1, 3}, at::kInt)));

  // all_gather: row q is rank q's tensor.
  at::Tensor g = c.all_gather(f64({double(r), 10.0 * r}));  // [W, 2]
  REQUIRE(g.sizes() == at::IntArrayRef({W, 2}));
  for (int q = 0; q < W; ++q) CHECK(at::equal(g[q], f64({double(q), 10.0 * q})));
  at::Tensor g2 = c.all_gather(at::full({2, 3}, r, at::kLong));  // [W, 2, 3]
  REQUIRE(g2.sizes() == at::IntArrayRef({W, 2, 3}));
  for (int q = 0; q < W; ++q) CHECK(at::equal(g2[q], at::full({2, 3}, q, at::kLong)));

  // reduce_scatter: input[i] = i + 100 r over 2W elements; rank r gets elements [2r, 2r+2) summed over ranks.
  at::Tensor in = at::arange(2 * W, at::kDouble) + 100.0 * r;  // [2W]
  at::Tensor rs = c.reduce_scatter(in, ReduceOp::sum);          // [2]
  CHECK(at::equal(rs, f64({W * (2.0 * r) + 100 * S, W * (2.0 * r + 1) + 100 * S})));
  at::Tensor rsa = c.reduce_scatter(in, ReduceOp::avg);
  CHECK(at::allclose(rsa, f64({2.0 * r + 100 * S / W, 2.0 * r + 1 + 100 * S / W})));

  c.barrier();

  // Bucketed gradient all-reduce: grads g_i = (i + 1) * (r + 1) * ones; p3's grad exists on rank 0 only
  // (the others get zeros). A 64-byte bucket forces several buckets and a tensor bigger than a bucket.
  std::vector<at::Tensor> params;
  std::vector<int64_t> sizes{3, 40, 1, 7};
  for (size_t i = 0; i < sizes.size(); ++i) {
    params.push_back(at::zeros({sizes[i]}, at::kFloat).requires_grad_(true));
    if (i == 2 && r != 0) continue;
    params.back().mutable_grad() = at::full({sizes[i]}, double((i + 1) * (r + 1)), at::kFloat);
  }
  params.push_back(at::zeros({2}, at::kFloat));  // no requires_grad: ignored
  c.all_reduce_gradients(params, ReduceOp::sum, 64.0 / (1024 * 1024));
  for (size_t i = 0; i < sizes.size(); ++i) {
    double expect = i == 2 ? (i + 1) * 1.0 : (i + 1) * (S + W);
    INFO("param " << i);
    CHECK(at::equal(params[i].grad(), at::full({sizes[i]}, expect, at::kFloat)));
  }
  CHECK_FALSE(params.back().grad().defined());
  c.all_reduce_gradients(params, ReduceOp::avg, 25.0);  // one bucket; now every rank holds the same grads
  for (size_t i = 0; i < sizes.size(); ++i) {
    double expect = i == 2 ? (i + 1) * 1.0 : (i + 1) * (S + W);
    CHECK(at::allclose(params[i].grad(), at::full({sizes[i]}, expect, at::kFloat)));
  }
  CHECK(c.bytes_reduced() > 0);
  c.barrier();
}

void scenario_small(Communicator& c) {
  at::Tensor a = at::full({2}, double(c.rank() + 1), at::kFloat);
  c.all_reduce(a, ReduceOp::sum);
  const int W = c.world_size();
  CHECK(at::equal(a, at::full({2}, W * (W + 1) / 2.0, at::kFloat)));
  c.barrier();
}

// Overlapped gradient reduction: two micro-batches, armed before the second; many small buckets (most launched
// during the backward), one parameter this rank never uses (rank 1), one micro-batch step with no backward at
// all. The reduced gradients must equal the synchronous all_reduce_gradients of an identical copy, exactly.
void scenario_overlap(Communicator& c) {
  auto make = [] {
    torch::manual_seed(3);
    std::vector<at::Tensor> ps;
    for (int64_t n : {5, 64, 7, 300, 2, 41}) ps.push_back(at::randn({n, 3}).requires_grad_(true));
    return ps;
  };
  auto a = make(), b = make();
  auto loss_of = [&](const std::vector<at::Tensor>& ps, int mb) {
    at::Tensor l = at::zeros({}, at::kFloat);
    for (size_t i = 0; i < ps.size(); ++i) {
      if (i == 2 && c.rank() == 1) continue;  // unused on rank 1: zero-filled there, as DDP would
      l = l + (ps[i] * ps[i]).sum() * double(c.rank() + 1 + mb) / double(i + 1);
    }
    return l;
  };
  OverlappedGradReducer red(c, a, ReduceOp::sum, /*bucket_mb=*/256.0 / (1024 * 1024));  // 256-byte buckets
  REQUIRE(red.buckets() >= 5);
  for (int round = 0; round < 2; ++round) {
    for (auto& p : a) p.mutable_grad() = at::Tensor();
    for (auto& p : b) p.mutable_grad() = at::Tensor();
    for (int mb = 0; mb < 2; ++mb) {
      if (mb == 1) red.arm();
      loss_of(a, mb).backward();
      loss_of(b, mb).backward();
    }
    red.finish();
    c.all_reduce_gradients(b, ReduceOp::sum);
    if (c.rank() == 0) CHECK(red.launched_during_backward() >= 1);
    for (size_t i = 0; i < a.size(); ++i) CHECK(at::equal(a[i].grad(), b[i].grad()));
  }
  // A step where this rank has nothing to back-propagate: finish() without arm() still reduces (zeros here).
  for (auto& p : a) p.mutable_grad() = at::Tensor();
  red.finish();
  for (auto& p : a) CHECK(p.grad().defined());
  c.barrier();
}

void scenario_peer_exits(Communicator& c) {
  if (c.rank() == 1) std::_Exit(0);  // gone without a word, after the mesh was built
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  at::Tensor a = at::ones({1024}, at::kFloat);
  auto t0 = std::chrono::steady_clock::now();
  try {
    c.all_reduce(a, ReduceOp::sum);
    FAIL("all_reduce with a dead peer returned");
  } catch (const Error& e) {
    std::string msg = e.what();
    std::fprintf(stderr, "rank 0 caught, as expected: %s\n", msg.c_str());
    INFO(msg);
    CHECK(msg.find("gloo all_reduce") != std::string::npos);
    CHECK(msg.find("rank 0 of 2") != std::string::npos);
    CHECK(msg.find("peer rank") != std::string::npos);
  }
  CHECK(elapsed_s(t0) < c.timeout().count() / 1000.0 + 5.0);
  // Latched: later calls fail at once, naming the first failure.
  try {
    c.barrier();
    FAIL("barrier after a failure returned");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("unusable after an earlier failure") != std::string::npos);
  }
}

void scenario_peer_hangs(Communicator& c) {
  const char* flag = std::getenv("RLVR_DIST_FLAG");
  REQUIRE(flag != nullptr);
  if (c.rank() == 1) {
    // Alive but never joins the collective; leaves once rank 0 reported its error.
    for (int i = 0; i < 1200 && !std::filesystem::exists(flag); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::_Exit(0);
  }
  at::Tensor a = at::ones({16}, at::kFloat);
  auto t0 = std::chrono::steady_clock::now();
  try {
    c.all_reduce(a, ReduceOp::sum);
    FAIL("all_reduce with a hung peer returned");
  } catch (const Error& e) {
    std::fprintf(stderr, "rank 0 caught, as expected: %s\n", e.what());
  }
  double took = elapsed_s(t0);
  std::ofstream(flag) << "done\n";
  CHECK(took < c.timeout().count() / 1000.0 + 5.0);
}


// ZeRO-1 against torch::optim::AdamW on the rank-averaged gradients (decay only on dim >= 2, clipping).
void scenario_zero(Communicator& c) {
  const int W = c.world_size(), r = c.rank();
  at::manual_seed(0);  // identical parameters on every rank
  std::vector<at::Tensor> p{at::randn({5, 3}), at::randn({3}), at::randn({7, 2}), at::randn({1})};
  std::vector<at::Tensor> ref, decay, no_decay;
  for (auto& t : p) {
    t.requires_grad_(true);
    ref.push_back(t.detach().clone().requires_grad_(true));
    (t.dim() >= 2 ? decay : no_decay).push_back(ref.back());
  }
  const double lr = 1e-2, wd = 0.1, clip = 0.5;
  ShardedAdamW opt(c, p, {0.9, 0.99, 1e-8, wd, clip});
  CHECK(opt.numel() == 15 + 3 + 14 + 1);
  CHECK(opt.shard_numel() == (opt.numel() + W - 1) / W);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(
                                 torch::optim::AdamWOptions(lr).betas({0.9, 0.99}).eps(1e-8).weight_decay(wd)));
  groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(
                                    torch::optim::AdamWOptions(lr).betas({0.9, 0.99}).eps(1e-8).weight_decay(0.0)));
  torch::optim::AdamW ref_opt(std::move(groups), torch::optim::AdamWOptions(lr));
  auto grad = [&](size_t i, int q, int step) {  // rank q's gradient of parameter i at `step`
    auto n = p[i].numel();
    return (at::full({n}, 0.3 * (q + 1) * (i + 1)) + 0.05 * step * at::arange(n, at::kFloat) - 0.2 * q)
        .view(p[i].sizes());
  };
  for (int step = 0; step < 4; ++step) {
    for (size_t i = 0; i < p.size(); ++i) {
      if (i == 3 && r == 0) {
        p[i].mutable_grad() = at::Tensor();  // undefined on rank 0 = zero
      } else {
        p[i].mutable_grad() = grad(i, r, step);
      }
      at::Tensor mean = at::zeros_like(p[i]);
      for (int q = 0; q < W; ++q) {
        if (!(i == 3 && q == 0)) mean += grad(i, q, step);
      }
      ref[i].mutable_grad() = mean / W;
    }
    double ref_norm = torch::nn::utils::clip_grad_norm_(ref, clip);
    double norm = opt.step(lr);
    ref_opt.step();
    CHECK(norm == Approx(ref_norm).epsilon(1e-5));
    for (size_t i = 0; i < p.size(); ++i) {
      INFO("step " << step << " param " << i);
      CHECK(at::allclose(p[i], ref[i], 1e-5, 1e-6));
    }
  }
  CHECK(opt.steps() == 4);
  opt.zero_grad();
  CHECK_FALSE(p[0].grad().defined());
}

}  // namespace

TEST_CASE("dist worker", "[.dist_worker]") {
  const char* scenario = std::getenv("RLVR_DIST_SCENARIO");
  REQUIRE(scenario != nullptr);
  DistributedConfig cfg;
  cfg.backend = "auto";
  cfg.timeout_s = std::getenv("RLVR_DIST_TIMEOUT") ? std::atoi(std::getenv("RLVR_DIST_TIMEOUT")) : 60;
  auto comm = make_communicator(cfg, c10::kCPU);
  REQUIRE(comm->world_size() == std::atoi(std::getenv("WORLD_SIZE")));
  REQUIRE(comm->rank() == std::atoi(std::getenv("RANK")));
  std::string s = scenario;
  if (s == "collectives") scenario_collectives(*comm);
  else if (s == "small") scenario_small(*comm);
  else if (s == "zero") scenario_zero(*comm);
  else if (s == "overlap") scenario_overlap(*comm);
  else if (s == "peer_exits") scenario_peer_exits(*comm);
  else if (s == "peer_hangs") scenario_peer_hangs(*comm);
  else if (s == "fail_fast") {
    if (comm->rank() == 1) std::_Exit(3);
    std::this_thread::sleep_for(std::chrono::seconds(100));  // killed by the launcher long before
  } else FAIL("unknown scenario " << s);
}

// ------------------------------------------------------------------------------------------------
// Multi-process tests (the parent side).

TEST_CASE("gloo collectives on 3 ranks are exact", "[dist]") {
  auto r = run_world("collectives", 3);
  require_all_ok(r, 3);
}

TEST_CASE("ZeRO-1 sharded AdamW on 3 ranks equals AdamW on the averaged gradients", "[dist]") {
  auto r = run_world("zero", 3);
  require_all_ok(r, 3);
}

TEST_CASE("gradient all-reduce overlapped with the backward equals the synchronous one on 2 ranks", "[dist]") {
  auto r = run_world("overlap", 2);
  require_all_ok(r, 2);
}

TEST_CASE("ZeRO-1 sharded AdamW on 1 rank (local communicator)", "[dist]") {
  CleanEnv env;
  auto c = make_local_communicator();
  scenario_zero(*c);
}

TEST_CASE("rank 0 hosts the store when no launcher store exists (torchrun without agent store)", "[dist]") {
  auto r = run_world("small", 2, {}, /*host_store=*/false);
  require_all_ok(r, 2);
}

TEST_CASE("a peer that exits makes the other rank throw a clear Error within the timeout", "[dist]") {
  auto r = run_world("peer_exits", 2, {{"RLVR_DIST_TIMEOUT", "5"}});
  require_all_ok(r, 2);
}

TEST_CASE("a peer that hangs makes the other rank throw after distributed.timeout_s", "[dist]") {
  auto flag = std::filesystem::temp_directory_path() / ("rlvr_dist_flag_" + std::to_string(getpid()));
  std::filesystem::remove(flag);
  auto r = run_world("peer_hangs", 2, {{"RLVR_DIST_TIMEOUT", "5"}, {"RLVR_DIST_FLAG", flag.string()}});
  std::filesystem::remove(flag);
  require_all_ok(r, 2);
}

TEST_CASE("the launcher stops the job and names the rank when one rank fails", "[dist]") {
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_world("fail_fast", 2);
  CHECK(r.failed_rank == 1);
  CHECK(r.exit_code == 3);
  REQUIRE(r.rank_status.size() == 2);
  CHECK(r.rank_status[1] == 3);
  CHECK(r.rank_status[0] == 128 + SIGTERM);  // rank 0 was sleeping 100 s and got SIGTERM
  CHECK_FALSE(r.timed_out);
  CHECK(elapsed_s(t0) < 60.0);
}

// ------------------------------------------------------------------------------------------------
// In-process tests.

TEST_CASE("world_size 1 without environment: the local communicator", "[dist]") {
  CleanEnv env;
  DistributedConfig cfg;
  auto c = make_communicator(cfg, c10::kCPU);
  CHECK(c->backend() == "local");
  CHECK(c->rank() == 0);
  CHECK(c->world_size() == 1);
  CHECK(c->local_rank() == 0);
  CHECK(c->is_main());
  at::Tensor a = at::arange(5, at::kFloat);
  for (auto op : {ReduceOp::sum, ReduceOp::avg, ReduceOp::max, ReduceOp::min}) {
    c->all_reduce(a, op);
    CHECK(at::equal(a, at::arange(5, at::kFloat)));
  }
  CHECK(c->all_reduce_scalar(2.5, ReduceOp::avg) == 2.5);
  c->broadcast(a, 0);
  CHECK(at::equal(a, at::arange(5, at::kFloat)));
  CHECK_THROWS_AS(c->broadcast(a, 1), Error);
  at::Tensor g = c->all_gather(at::ones({2, 3}));
  CHECK(g.sizes() == at::IntArrayRef({1, 2, 3}));
  CHECK(at::equal(c->reduce_scatter(at::arange(4, at::kFloat)), at::arange(4, at::kFloat)));
  c->barrier();
  at::Tensor p = at::zeros({3}).requires_grad_(true);
  p.mutable_grad() = at::full({3}, 2.0);
  at::Tensor q = at::zeros({2}).requires_grad_(true);  // no grad yet: gets zeros
  c->all_reduce_gradients({p, q}, ReduceOp::avg);
  CHECK(at::equal(p.grad(), at::full({3}, 2.0)));
  CHECK(at::equal(q.grad(), at::zeros({2})));
}

TEST_CASE("config errors: mpi, unknown backend, device mismatch, timeout", "[dist]") {
  CleanEnv env;
  DistributedConfig cfg;
  cfg.backend = "mpi";
  CHECK_THROWS_AS(make_communicator(cfg, c10::kCPU), ConfigError);
  cfg.backend = "ucc";
  CHECK_THROWS_AS(make_communicator(cfg, c10::kCPU), ConfigError);
  cfg.backend = "nccl";
  CHECK_THROWS_AS(make_communicator(cfg, c10::kCPU), ConfigError);
  cfg.backend = "gloo";
  cfg.timeout_s = 0;
  WorldInfo w;
  CHECK_THROWS_AS(make_communicator(cfg, c10::kCPU, w), ConfigError);
  auto b = available_backends();
  CHECK(std::find(b.begin(), b.end(), "gloo") != b.end());
}

TEST_CASE("world_from_env: torchrun, SLURM, none", "[dist]") {
  {
    CleanEnv env;
    auto w = world_from_env();
    CHECK(w.source == "none");
    CHECK(w.world_size == 1);
  }
  {
    CleanEnv env;
    env.set("RANK", "3");
    env.set("WORLD_SIZE", "8");
    env.set("LOCAL_RANK", "1");
    env.set("LOCAL_WORLD_SIZE", "2");
    env.set("MASTER_ADDR", "node7");
    env.set("MASTER_PORT", "1234");
    env.set("TORCHELASTIC_USE_AGENT_STORE", "True");
    env.set("SLURM_PROCID", "5");  // torchrun variables win
    auto w = world_from_env();
    CHECK(w.source == "torchrun");
    CHECK(w.rank == 3);
    CHECK(w.world_size == 8);
    CHECK(w.local_rank == 1);
    CHECK(w.local_world_size == 2);
    CHECK(w.master_addr == "node7");
    CHECK(w.master_port == 1234);
    CHECK(w.use_agent_store);
  }
  {
    CleanEnv env;
    env.set("SLURM_PROCID", "5");
    env.set("SLURM_NTASKS", "8");
    env.set("SLURM_LOCALID", "1");
    env.set("SLURM_STEP_ID", "0");
    env.set("SLURM_JOB_ID", "123456");
    env.set("SLURM_STEP_NODELIST", "gpu[007-008],cpu1");
    auto w = world_from_env();
    CHECK(w.source == "slurm");
    CHECK(w.rank == 5);
    CHECK(w.world_size == 8);
    CHECK(w.local_rank == 1);
    CHECK(w.master_addr == "gpu007");
    CHECK(w.master_port == 20000 + 123456 % 10000);
    CHECK_FALSE(w.use_agent_store);
  }
  {
    CleanEnv env;  // the sbatch shell itself (no srun step): single process
    env.set("SLURM_PROCID", "0");
    env.set("SLURM_NTASKS", "8");
    env.set("SLURM_JOB_NODELIST", "gpu[007-008]");
    CHECK(world_from_env().source == "none");
    env.set("SLURM_STEP_ID", "4294967291");  // the batch step's special id
    CHECK(world_from_env().source == "none");
  }
  {
    CleanEnv env;
    env.set("RANK", "2");
    env.set("WORLD_SIZE", "2");
    CHECK_THROWS_AS(world_from_env(), ConfigError);
  }
  {
    CleanEnv env;
    env.set("RANK", "x");
    env.set("WORLD_SIZE", "2");
    CHECK_THROWS_AS(world_from_env(), ConfigError);
  }
  {
    CleanEnv env;
    env.set("RANK", "0");
    CHECK_THROWS_AS(world_from_env(), ConfigError);  // no WORLD_SIZE
  }
  {
    CleanEnv env;
    env.set("RANK", "0");
    env.set("WORLD_SIZE", "2");
    env.set("MASTER_PORT", "70000");
    CHECK_THROWS_AS(world_from_env(), ConfigError);
  }
}

TEST_CASE("first_slurm_host", "[dist]") {
  CHECK(first_slurm_host("node1") == "node1");
  CHECK(first_slurm_host("node1,node2") == "node1");
  CHECK(first_slurm_host("gpu[003-005,9],cpu1") == "gpu003");
  CHECK(first_slurm_host("gpu[12,3-4]") == "gpu12");
  CHECK(first_slurm_host("rack[1-2]-n[07-09]") == "rack1-n07");
  CHECK(first_slurm_host("a-[0001-0004]-ib") == "a-0001-ib");
  CHECK_THROWS_AS(first_slurm_host("gpu[1-2"), ConfigError);
  CHECK_THROWS_AS(first_slurm_host(""), ConfigError);
}

TEST_CASE("rendezvous names the missing ranks when a rank never arrives", "[dist]") {
  c10d::TCPStoreOptions so;
  so.port = 0;
  so.isServer = true;
  so.waitWorkers = false;
  auto store = c10::make_intrusive<c10d::TCPStore>("127.0.0.1", so);
  WorldInfo w;
  w.rank = 0;
  w.world_size = 3;
  w.master_port = store->getPort();
  w.use_agent_store = true;
  w.source = "test";
  DistributedConfig cfg;
  cfg.backend = "gloo";
  cfg.timeout_s = 1;
  try {
    make_communicator(cfg, c10::kCPU, w);
    FAIL("rendezvous without the other ranks returned");
  } catch (const Error& e) {
    std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find("waiting for ranks [1, 2]") != std::string::npos);
  }
}

TEST_CASE("rendezvous fails clearly when the store is unreachable", "[dist]") {
  WorldInfo w;
  w.rank = 1;
  w.world_size = 2;
  w.master_port = pick_free_port();  // nobody listens there
  w.source = "test";
  DistributedConfig cfg;
  cfg.backend = "gloo";
  cfg.timeout_s = 1;
  try {
    make_communicator(cfg, c10::kCPU, w);
    FAIL("rendezvous without a store returned");
  } catch (const Error& e) {
    std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find("cannot reach the TCPStore") != std::string::npos);
  }
}

TEST_CASE("a real 1-rank gloo backend behaves like the local communicator", "[dist]") {
  WorldInfo w;
  w.master_port = pick_free_port();
  w.source = "test";
  DistributedConfig cfg;
  cfg.backend = "gloo";
  cfg.timeout_s = 30;
  auto c = make_communicator(cfg, c10::kCPU, w);
  CHECK(c->backend() == "gloo");
  at::Tensor a = at::arange(4, at::kFloat);
  c->all_reduce(a, ReduceOp::avg);
  CHECK(at::equal(a, at::arange(4, at::kFloat)));
  CHECK(at::equal(c->all_gather(a)[0], a));
  CHECK(at::equal(c->reduce_scatter(a, ReduceOp::sum), a));
  c->barrier();
}

TEST_CASE("RLVR_DIST_FORCE_BACKEND=1 builds the real backend at world_size 1 instead of the local shortcut", "[dist]") {
  CleanEnv env;
  const std::string port = std::to_string(pick_free_port());
  env.set("MASTER_PORT", port.c_str());
  DistributedConfig cfg;
  cfg.backend = "gloo";
  cfg.timeout_s = 30;
  CHECK(make_communicator(cfg, c10::kCPU)->backend() == "local");  // without the switch: the shortcut
  env.set("RLVR_DIST_FORCE_BACKEND", "1");
  auto c = make_communicator(cfg, c10::kCPU);
  REQUIRE(c->backend() == "gloo");
  CHECK(c->world_size() == 1);
  // The collectives really go through Gloo: the payload counter moves, results are the 1-rank identities.
  at::Tensor a = at::tensor({1.5f, -2.0f, 4.0f});
  c->all_reduce(a, ReduceOp::sum);
  CHECK(at::equal(a, at::tensor({1.5f, -2.0f, 4.0f})));
  CHECK(c->bytes_reduced() == 12);
  CHECK(c->all_reduce_scalar(3.25, ReduceOp::max) == 3.25);
  c->barrier();
  // The store was hosted on MASTER_PORT: a second forced group on the same port cannot host it again.
  CHECK_THROWS_AS(make_communicator(cfg, c10::kCPU), Error);
  env.set("RLVR_DIST_FORCE_BACKEND", "0");
  CHECK(make_communicator(cfg, c10::kCPU)->backend() == "local");
}

TEST_CASE("gloo_backend.cpp emits no Gloo symbol that could interpose libtorch's (ODR guard)", "[dist]") {
  std::filesystem::path obj =
      std::filesystem::path(RLVR_BINARY_DIR) / "trainer/dist/CMakeFiles/rlvr_dist.dir/gloo_backend.cpp.o";
  if (!std::filesystem::exists(obj) || std::system("command -v nm >/dev/null 2>&1") != 0) {
    WARN("skipped: " << obj << " or nm not found");
    return;
  }
  // Defined symbols (any binding) that mention gloo:: or GlooStore, apart from our own functions and
  // local (t) clones: none may be emitted here.
  std::string cmd = "nm -C --defined-only " + obj.string() +
                    " | grep -E ' [TWVDRBu] ' | grep -E 'gloo::|GlooStore' | grep -v 'rlvr::dist::detail' | wc -l";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[64] = {0};
  REQUIRE(fgets(buf, sizeof(buf), p) != nullptr);
  pclose(p);
  CHECK(std::atoi(buf) == 0);
}

TEST_CASE("rlvr launch runs N ranks of a subcommand and reports the failed rank", "[dist]") {
  std::filesystem::path rlvr = std::filesystem::path(RLVR_BINARY_DIR) / "cli/rlvr";
  if (!std::filesystem::exists(rlvr)) {
    WARN("skipped: " << rlvr << " is not built (cmake --build <build> --target rlvr)");
    return;
  }
  auto run = [&](const std::string& args, std::string& out) {
    std::string cmd = rlvr.string() + " launch " + args + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[4096];
    while (fgets(buf, sizeof(buf), p)) out += buf;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  };
  std::string out;
  CHECK(run("--nproc 2 --prefix-all -- config", out) == 0);
  INFO(out);
  CHECK(out.find("[rank 0] ") != std::string::npos);
  CHECK(out.find("[rank 1] ") != std::string::npos);
  out.clear();
  // A config error (exit code 2) on every rank: the launcher exits 2 and names a rank.
  CHECK(run("--nproc 2 -- config -c /nonexistent/rlvr.yaml", out) == 2);
  CHECK(out.find("launch: failed: rank ") != std::string::npos);
  out.clear();
  CHECK(run("--nproc 2 -- launch --nproc 2 -- config", out) == 2);  // no recursion
}
