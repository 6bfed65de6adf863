// bench_dist: algorithm bandwidth (bytes / time) of Communicator::all_reduce on float32 buffers from 1 KB to
// 64 MB, plus the bucketed gradient all-reduce on a model-like list of tensors. Without RANK in the
// environment it launches --nproc copies of itself through launch_local_world (loopback, gloo on CPU).
// Time per size = the slowest rank's median over iterations, after warmup.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "common/error.h"
#include "trainer/dist/communicator.h"
#include "trainer/dist/launcher.h"

using namespace rlvr;
using namespace rlvr::dist;
using Clock = std::chrono::steady_clock;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

template <class F>
double time_it(Communicator& c, int iters, F&& f) {
  std::vector<double> ts;
  for (int i = 0; i < iters; ++i) {
    c.barrier();
    auto t0 = Clock::now();
    f();
    ts.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return c.all_reduce_scalar(median(ts), ReduceOp::max);
}

int worker(const std::string& backend, double budget_s) {
  DistributedConfig cfg;
  cfg.backend = backend;
  cfg.timeout_s = 120;
  auto c = make_communicator(cfg, c10::kCPU);
  const int W = c->world_size();
  if (c->is_main()) {
    std::printf("# rlvr Communicator all_reduce (sum, float32), backend %s, %d ranks, OMP_NUM_THREADS=%s\n",
                c->backend().c_str(), W, std::getenv("OMP_NUM_THREADS") ? std::getenv("OMP_NUM_THREADS") : "-");
    std::printf("%-10s %10s %12s %12s %12s\n", "bytes", "iters", "time_us", "algbw_GB/s", "busbw_GB/s");
  }
  for (int64_t bytes = 1024; bytes <= 64 * 1024 * 1024; bytes *= 4) {
    at::Tensor t = at::ones({bytes / 4}, at::kFloat);  // [bytes / 4]
    for (int i = 0; i < 3; ++i) c->all_reduce(t, ReduceOp::sum);
    // Iterations from a quick estimate so each size takes about budget_s.
    double est = time_it(*c, 2, [&] { c->all_reduce(t, ReduceOp::sum); });
    int iters = static_cast<int>(std::clamp(budget_s / std::max(est, 1e-6), 5.0, 200.0));
    iters = static_cast<int>(c->all_reduce_scalar(iters, ReduceOp::min));
    double s = time_it(*c, iters, [&] { c->all_reduce(t, ReduceOp::sum); });
    double alg = bytes / s / 1e9;
    if (c->is_main()) {
      std::printf("%-10lld %10d %12.1f %12.3f %12.3f\n", static_cast<long long>(bytes), iters, s * 1e6, alg,
                  alg * 2.0 * (W - 1) / W);
    }
  }
  // Gradient all-reduce as the trainer calls it: ~50 MB in 200 tensors of assorted sizes, 25 MB buckets,
  // against one all_reduce of a single flat 50 MB buffer.
  std::vector<at::Tensor> params;
  int64_t total = 0;
  for (int i = 0; params.size() < 200; ++i) {
    int64_t n = (i % 4 == 0) ? 262144 : (i % 4 == 1) ? 65536 : (i % 4 == 2) ? 1024 : 8;
    params.push_back(at::zeros({n}, at::kFloat).requires_grad_(true));
    params.back().mutable_grad() = at::ones({n}, at::kFloat);
    total += n * 4;
  }
  at::Tensor flat = at::ones({total / 4}, at::kFloat);
  for (int i = 0; i < 2; ++i) c->all_reduce_gradients(params, ReduceOp::avg, 25.0);
  double sg = time_it(*c, 10, [&] { c->all_reduce_gradients(params, ReduceOp::avg, 25.0); });
  double sf = time_it(*c, 10, [&] { c->all_reduce(flat, ReduceOp::sum); });
  if (c->is_main()) {
    std::printf("# all_reduce_gradients: %zu tensors, %.1f MB, 25 MB buckets: %.1f ms (%.3f GB/s); one flat "
                "buffer of the same size: %.1f ms (%.3f GB/s)\n",
                params.size(), total / 1048576.0, sg * 1e3, total / sg / 1e9, sf * 1e3, total / sf / 1e9);
  }
  c->barrier();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_dist: Communicator all-reduce bandwidth on loopback"};
  int nproc = 2;
  std::string backend = "gloo";
  double budget = 0.3;
  app.add_option("--nproc", nproc, "ranks to launch (default 2)");
  app.add_option("--backend", backend, "gloo (CPU)");
  app.add_option("--budget", budget, "seconds of timed iterations per size (default 0.3)");
  CLI11_PARSE(app, argc, argv);
  try {
    if (std::getenv("RANK") != nullptr) return worker(backend, budget);
    char buf[4096];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    RLVR_CHECK(n > 0, "cannot resolve /proc/self/exe");
    LaunchOptions o;
    o.nproc = nproc;
    o.exe = std::string(buf, static_cast<size_t>(n));
    for (int i = 1; i < argc; ++i) o.args.push_back(argv[i]);
    auto r = launch_local_world(o);
    return r.exit_code;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_dist: %s\n", e.what());
    return 1;
  }
}
