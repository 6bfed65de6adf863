// The backend-independent half of rlvr::dist: the Communicator's public collectives (bucketing,
// staging of non-contiguous tensors, avg emulation, failure latching), the local communicator, the
// environment contract (torchrun / SLURM) and the TCPStore rendezvous behind make_communicator().
#include "trainer/dist/communicator.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <unistd.h>

#include <c10/util/Logging.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "common/error.h"
#include "common/log.h"
#include "trainer/choices.h"
#include "trainer/dist/detail.h"

namespace rlvr::dist {

const char* to_string(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum: return "sum";
    case ReduceOp::avg: return "avg";
    case ReduceOp::max: return "max";
    case ReduceOp::min: return "min";
  }
  return "?";
}

namespace detail {

std::string short_what(const std::exception& e) {
  std::string s;
  if (auto* ce = dynamic_cast<const c10::Error*>(&e)) {
    s = ce->what_without_backtrace();
  } else {
    s = e.what();
  }
  // c10 sometimes still appends "Exception raised from ... frame #0"; keep the message part.
  for (const char* cut : {"\nException raised from", "\nframe #"}) {
    auto p = s.find(cut);
    if (p != std::string::npos) s.resize(p);
  }
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace detail

// ------------------------------------------------------------------------------------------------
// Communicator: public collectives on top of the backend primitives.

template <class F>
void Communicator::guarded(const char* what, const at::Tensor* t, F&& f) {
  if (broken()) {
    throw Error(fmt::format("dist: {} on rank {}: the communicator is unusable after an earlier failure: {}",
                            what, rank_, broken_reason_));
  }
  auto t0 = std::chrono::steady_clock::now();
  try {
    f();
  } catch (const std::exception& e) {
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::string shape = t ? fmt::format(" of {} {} elements", t->numel(), c10::toString(t->scalar_type())) : "";
    std::string cause = detail::short_what(e);
    if (!cause.empty() && cause.back() != '.' && cause.back() != '!') cause += '.';
    broken_reason_ = fmt::format(
        "{} {}{} failed on rank {} of {} after {:.1f} s (distributed.timeout_s = {}): {} A peer rank "
        "probably exited, crashed or hung; check the other ranks' logs",
        backend(), what, shape, rank_, world_size_, secs,
        std::chrono::duration_cast<std::chrono::seconds>(timeout_).count(), cause);
    abort();
    throw Error(broken_reason_);
  }
}

void Communicator::check_tensor(const at::Tensor& t, const char* what) const {
  RLVR_CHECK(t.defined(), "dist: {} on rank {}: undefined tensor", what, rank_);
  RLVR_CHECK(t.layout() == at::kStrided, "dist: {} on rank {}: only dense tensors are supported, got {}", what,
             rank_, c10::str(t.layout()));
  c10::Device d = device();
  bool same = t.device().type() == d.type() && (!d.has_index() || t.device().index() == d.index());
  RLVR_CHECK(same, "dist: {} on rank {} ({}): tensor is on {}, the communicator needs {}", what, rank_,
             backend(), t.device().str(), d.str());
}

// One tensor, any strides: stage through a contiguous copy if needed; avg emulated as sum / world.
void Communicator::reduce_one(at::Tensor& t, ReduceOp op) {
  if (t.numel() == 0) return;
  bool emulate_avg = op == ReduceOp::avg && !native_avg();
  if (op == ReduceOp::avg) {
    RLVR_CHECK(at::isFloatingType(t.scalar_type()),
               "dist: all_reduce avg on rank {} needs a floating tensor, got {} (use sum and divide)", rank_,
               c10::toString(t.scalar_type()));
  }
  at::Tensor flat = t.is_contiguous() ? t.view({-1}) : t.contiguous().view({-1});  // [numel]
  guarded("all_reduce", &t, [&] { all_reduce_flat(flat, emulate_avg ? ReduceOp::sum : op); });
  if (emulate_avg) flat.div_(world_size_);
  if (!t.is_contiguous()) t.copy_(flat.view(t.sizes()));
  bytes_ += t.numel() * static_cast<int64_t>(t.element_size());
}

namespace {

// Splits `tensors` into buckets of one dtype and at most cap_bytes (a bigger tensor is a bucket alone),
// keeping the order within each dtype, and calls fn(indices) per bucket.
template <class F>
void for_each_bucket(const std::vector<at::Tensor>& tensors, int64_t cap_bytes, F&& fn) {
  std::vector<at::ScalarType> order;
  std::map<at::ScalarType, std::vector<size_t>> by_dtype;
  for (size_t i = 0; i < tensors.size(); ++i) {
    auto st = tensors[i].scalar_type();
    if (!by_dtype.count(st)) order.push_back(st);
    by_dtype[st].push_back(i);
  }
  for (auto st : order) {
    std::vector<size_t> bucket;
    int64_t bytes = 0;
    for (size_t i : by_dtype[st]) {
      int64_t b = tensors[i].numel() * static_cast<int64_t>(tensors[i].element_size());
      if (!bucket.empty() && bytes + b > cap_bytes) {
        fn(bucket);
        bucket.clear();
        bytes = 0;
      }
      bucket.push_back(i);
      bytes += b;
    }
    if (!bucket.empty()) fn(bucket);
  }
}

int64_t bucket_cap(double bucket_mb) {
  RLVR_CHECK(bucket_mb > 0, "dist: bucket size must be > 0 MB, got {}", bucket_mb);
  return std::max<int64_t>(1, static_cast<int64_t>(bucket_mb * 1024.0 * 1024.0));
}

// Runs `op(flat)` on the concatenation of tensors[idx] and writes the result back into them.
template <class Op>
void run_flattened(std::vector<at::Tensor>& tensors, const std::vector<size_t>& idx, Op&& op) {
  if (idx.size() == 1) {
    op(tensors[idx[0]]);
    return;
  }
  std::vector<at::Tensor> views;
  views.reserve(idx.size());
  for (size_t i : idx) views.push_back(tensors[i].reshape({-1}));
  at::Tensor flat = at::cat(views);  // [sum numel]
  op(flat);
  int64_t off = 0;
  for (size_t i : idx) {
    int64_t n = tensors[i].numel();
    tensors[i].copy_(flat.narrow(0, off, n).view(tensors[i].sizes()));
    off += n;
  }
}

}  // namespace

void Communicator::all_reduce_bucketed(std::vector<at::Tensor>& tensors, ReduceOp op, double bucket_mb) {
  for (const auto& t : tensors) check_tensor(t, "all_reduce");
  for_each_bucket(tensors, bucket_cap(bucket_mb), [&](const std::vector<size_t>& idx) {
    run_flattened(tensors, idx, [&](at::Tensor& flat) { reduce_one(flat, op); });
  });
}

void Communicator::all_reduce(std::vector<at::Tensor>& tensors, ReduceOp op) {
  all_reduce_bucketed(tensors, op, 25.0);
}

void Communicator::all_reduce(at::Tensor& tensor, ReduceOp op) {
  check_tensor(tensor, "all_reduce");
  reduce_one(tensor, op);
}

std::vector<double> Communicator::all_reduce_scalars(const std::vector<double>& values, ReduceOp op) {
  if (values.empty()) return {};
  at::Tensor t = at::tensor(values, at::TensorOptions().dtype(at::kDouble)).to(device());  // [n]
  reduce_one(t, op);
  t = t.cpu();
  return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
}

double Communicator::all_reduce_scalar(double value, ReduceOp op) { return all_reduce_scalars({value}, op)[0]; }

void Communicator::broadcast(std::vector<at::Tensor>& tensors, int root) {
  RLVR_CHECK(root >= 0 && root < world_size_, "dist: broadcast root {} is not a rank of a world of {}", root,
             world_size_);
  for (const auto& t : tensors) check_tensor(t, "broadcast");
  for_each_bucket(tensors, bucket_cap(25.0), [&](const std::vector<size_t>& idx) {
    run_flattened(tensors, idx, [&](at::Tensor& t) {
      if (t.numel() == 0) return;
      at::Tensor flat = t.is_contiguous() ? t.view({-1}) : t.contiguous().view({-1});
      guarded("broadcast", &t, [&] { broadcast_flat(flat, root); });
      if (!t.is_contiguous()) t.copy_(flat.view(t.sizes()));
      bytes_ += t.numel() * static_cast<int64_t>(t.element_size());
    });
  });
}

void Communicator::broadcast(at::Tensor& tensor, int root) {
  std::vector<at::Tensor> v{tensor};
  broadcast(v, root);
}

at::Tensor Communicator::all_gather(const at::Tensor& tensor) {
  check_tensor(tensor, "all_gather");
  at::Tensor in = tensor.contiguous().view({-1});                       // [n]
  at::Tensor out = at::empty({world_size_ * in.numel()}, in.options());  // [world * n]
  if (in.numel() > 0) guarded("all_gather", &tensor, [&] { all_gather_flat(out, in); });
  bytes_ += out.numel() * static_cast<int64_t>(out.element_size());
  std::vector<int64_t> shape{world_size_};
  for (auto s : tensor.sizes()) shape.push_back(s);
  return out.view(shape);  // [world, *tensor.shape]
}

at::Tensor Communicator::reduce_scatter(const at::Tensor& input, ReduceOp op) {
  check_tensor(input, "reduce_scatter");
  RLVR_CHECK(input.dim() >= 1 && input.size(0) % world_size_ == 0,
             "dist: reduce_scatter on rank {}: dim 0 of input {} must be a multiple of world_size {}", rank_,
             c10::str(input.sizes()), world_size_);
  if (op == ReduceOp::avg) {
    RLVR_CHECK(at::isFloatingType(input.scalar_type()),
               "dist: reduce_scatter avg on rank {} needs a floating tensor, got {}", rank_,
               c10::toString(input.scalar_type()));
  }
  std::vector<int64_t> shape(input.sizes().begin(), input.sizes().end());
  shape[0] /= world_size_;
  at::Tensor in = input.contiguous().view({-1});                             // [world * n]
  at::Tensor out = at::empty({in.numel() / world_size_}, in.options());      // [n]
  bool emulate_avg = op == ReduceOp::avg && !native_avg();
  if (in.numel() > 0) {
    guarded("reduce_scatter", &input, [&] { reduce_scatter_flat(out, in, emulate_avg ? ReduceOp::sum : op); });
  }
  if (emulate_avg) out.div_(world_size_);
  bytes_ += in.numel() * static_cast<int64_t>(in.element_size());
  return out.view(shape);  // [input.size(0) / world, ...]
}

void Communicator::reduce_scatter_flat(at::Tensor& out, const at::Tensor& in, ReduceOp op) {
  at::Tensor tmp = in.clone();  // [world * n]
  all_reduce_flat(tmp, op);
  out.copy_(tmp.narrow(0, static_cast<int64_t>(rank_) * out.numel(), out.numel()));
}

void Communicator::barrier() {
  guarded("barrier", nullptr, [&] { barrier_impl(); });
}

void Communicator::all_reduce_gradients(const std::vector<at::Tensor>& params, ReduceOp op, double bucket_mb) {
  std::vector<at::Tensor> grads;
  grads.reserve(params.size());
  for (const auto& p : params) {
    if (!p.defined() || !p.requires_grad()) continue;
    if (!p.grad().defined()) {
      const_cast<at::Tensor&>(p).mutable_grad() = at::zeros_like(p);
    }
    RLVR_CHECK(p.grad().layout() == at::kStrided, "dist: sparse gradients are not supported (rank {})", rank_);
    grads.push_back(p.grad());
  }
  all_reduce_bucketed(grads, op, bucket_mb);
}

// ------------------------------------------------------------------------------------------------
// The local communicator: world_size 1, every collective is the identity.

namespace {

class LocalCommunicator final : public Communicator {
 public:
  explicit LocalCommunicator(c10::Device device) : Communicator(0, 1, 0, std::chrono::milliseconds(0)), device_(device) {}
  std::string backend() const override { return "local"; }
  c10::Device device() const override { return device_; }

 protected:
  void all_reduce_flat(at::Tensor&, ReduceOp) override {}
  bool native_avg() const override { return true; }
  void broadcast_flat(at::Tensor&, int) override {}
  void all_gather_flat(at::Tensor& out, const at::Tensor& in) override { out.copy_(in); }
  void reduce_scatter_flat(at::Tensor& out, const at::Tensor& in, ReduceOp) override { out.copy_(in); }
  void barrier_impl() override {}

 private:
  c10::Device device_;
};

// Same-type device check that accepts a CPU device for the local communicator whatever its index.
c10::Device normalize_local(c10::Device d) { return d.is_cpu() ? c10::Device(c10::kCPU) : d; }

}  // namespace

std::unique_ptr<Communicator> make_local_communicator(c10::Device device) {
  return std::make_unique<LocalCommunicator>(normalize_local(device));
}

// ------------------------------------------------------------------------------------------------
// Environment.

namespace {

std::optional<std::string> env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

int env_int(const char* name, const std::string& value, int lo, int hi) {
  size_t pos = 0;
  long long v = 0;
  try {
    v = std::stoll(value, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  if (pos == 0 || pos != value.size() || v < lo || v > hi) {
    throw ConfigError(fmt::format("environment: {}='{}' is not an integer in [{}, {}]", name, value, lo, hi));
  }
  return static_cast<int>(v);
}

int env_int_or(const char* name, int fallback, int lo, int hi) {
  auto v = env(name);
  return v ? env_int(name, *v, lo, hi) : fallback;
}

bool env_true(const char* name) {
  auto v = env(name);
  if (!v) return false;
  std::string s = *v;
  std::transform(s.begin(), s.end(), s.begin(), ::tolower);
  return s == "1" || s == "true" || s == "yes";
}

}  // namespace

std::string first_slurm_host(const std::string& nodelist) {
  // Top-level entries are separated by commas outside brackets; take the first one and, in each
  // bracket group, the first number (keeping its zero padding): "gpu[003-005,9]-ib,cpu1" -> "gpu003-ib".
  std::string first;
  int depth = 0;
  for (char c : nodelist) {
    if (c == '[') ++depth;
    if (c == ']') --depth;
    if (c == ',' && depth == 0) break;
    first.push_back(c);
  }
  std::string host;
  for (size_t i = 0; i < first.size(); ++i) {
    if (first[i] != '[') {
      host.push_back(first[i]);
      continue;
    }
    size_t close = first.find(']', i);
    RLVR_CONFIG_CHECK(close != std::string::npos, "SLURM nodelist '{}': unbalanced '['", nodelist);
    std::string inner = first.substr(i + 1, close - i - 1);
    size_t end = inner.find_first_of(",-");
    host += inner.substr(0, end);
    i = close;
  }
  RLVR_CONFIG_CHECK(!host.empty(), "SLURM nodelist '{}': no host name", nodelist);
  return host;
}

WorldInfo world_from_env() {
  WorldInfo w;
  constexpr int kMaxWorld = 1 << 20;
  auto master_port_env = [&](int fallback) { return env_int_or("MASTER_PORT", fallback, 1, 65535); };
  if (auto rank = env("RANK")) {
    auto ws = env("WORLD_SIZE");
    RLVR_CONFIG_CHECK(ws.has_value(), "environment: RANK={} is set but WORLD_SIZE is not (torchrun sets both)", *rank);
    w.source = "torchrun";
    w.world_size = env_int("WORLD_SIZE", *ws, 1, kMaxWorld);
    w.rank = env_int("RANK", *rank, 0, kMaxWorld);
    w.local_rank = env_int_or("LOCAL_RANK", 0, 0, kMaxWorld);
    w.local_world_size = env_int_or("LOCAL_WORLD_SIZE", w.world_size, 1, kMaxWorld);
    w.master_addr = env("MASTER_ADDR").value_or("127.0.0.1");
    w.master_port = master_port_env(29500);
    w.use_agent_store = env_true("TORCHELASTIC_USE_AGENT_STORE");
    w.restart_count = env_int_or("TORCHELASTIC_RESTART_COUNT", 0, 0, 1 << 30);
  } else if (!env_true("RLVR_DIST_IGNORE_SLURM") && env("SLURM_PROCID") && env("SLURM_NTASKS") &&
             env("SLURM_STEP_ID")) {
    // Only a real srun step: the batch/extern/interactive steps have special ids >= 0xFFFFFFF0 - ...
    long long step = -1;
    try {
      step = std::stoll(*env("SLURM_STEP_ID"));
    } catch (const std::exception&) {
    }
    if (step >= 0 && step < (1LL << 31)) {
      w.source = "slurm";
      w.world_size = env_int("SLURM_NTASKS", *env("SLURM_NTASKS"), 1, kMaxWorld);
      w.rank = env_int("SLURM_PROCID", *env("SLURM_PROCID"), 0, kMaxWorld);
      w.local_rank = env_int_or("SLURM_LOCALID", 0, 0, kMaxWorld);
      // SLURM_NTASKS_PER_NODE is only set with --ntasks-per-node; otherwise assume one node's worth.
      w.local_world_size = env_int_or("SLURM_NTASKS_PER_NODE", w.world_size, 1, kMaxWorld);
      if (auto a = env("MASTER_ADDR")) {
        w.master_addr = *a;
      } else {
        auto nodes = env("SLURM_STEP_NODELIST");
        if (!nodes) nodes = env("SLURM_JOB_NODELIST");
        if (!nodes) nodes = env("SLURM_NODELIST");
        RLVR_CONFIG_CHECK(nodes.has_value() || w.world_size == 1,
                          "environment: SLURM step without MASTER_ADDR nor SLURM_STEP_NODELIST/SLURM_JOB_NODELIST");
        if (nodes) w.master_addr = first_slurm_host(*nodes);
      }
      int job = env_int_or("SLURM_JOB_ID", 0, 0, 2147483647);
      w.master_port = master_port_env(20000 + job % 10000);
    }
  }
  RLVR_CONFIG_CHECK(w.rank < w.world_size, "environment ({}): rank {} is not below world size {}", w.source, w.rank,
                    w.world_size);
  RLVR_CONFIG_CHECK(!w.master_addr.empty(), "environment ({}): empty MASTER_ADDR", w.source);
  return w;
}

// ------------------------------------------------------------------------------------------------
// Rendezvous and the factory.

namespace {

std::string host_name() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "?";
  return buf;
}

// Connects to (or, on rank 0 without a launcher store, hosts) the TCPStore; then every rank registers,
// checks it is the only process with its rank and that all agree on the world size, and waits for all.
c10::intrusive_ptr<c10d::Store> rendezvous(const WorldInfo& w, std::chrono::milliseconds timeout) {
  c10::intrusive_ptr<c10d::Store> tcp;
  bool server = w.rank == 0 && !w.use_agent_store;
  try {
    c10d::TCPStoreOptions o;
    o.port = static_cast<uint16_t>(w.master_port);
    o.isServer = server;
    o.waitWorkers = false;
    o.timeout = timeout;
    tcp = c10::make_intrusive<c10d::TCPStore>(w.master_addr, o);
  } catch (const std::exception& e) {
    throw Error(fmt::format(
        "dist rendezvous: rank {} of {} cannot {} the TCPStore at {}:{} within {} s: {}. Check MASTER_ADDR / "
        "MASTER_PORT (and that the port is free on rank 0's host)",
        w.rank, w.world_size, server ? "host" : "reach", w.master_addr, w.master_port,
        std::chrono::duration_cast<std::chrono::seconds>(timeout).count(), detail::short_what(e)));
  }
  auto store = c10::make_intrusive<c10d::PrefixStore>(fmt::format("rlvr/attempt_{}", w.restart_count), tcp);
  std::string me = fmt::format("{}:{}", host_name(), static_cast<long>(getpid()));
  try {
    int64_t claims = store->add(fmt::format("claim/{}", w.rank), 1);
    RLVR_CHECK(claims == 1,
               "dist rendezvous: rank {} was claimed twice (this is {}); two processes got the same RANK / "
               "SLURM_PROCID",
               w.rank, me);
    store->set(fmt::format("rank/{}", w.rank), std::vector<uint8_t>(me.begin(), me.end()));
    if (w.rank == 0) {
      std::string ws = std::to_string(w.world_size);
      store->set("world_size", std::vector<uint8_t>(ws.begin(), ws.end()));
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(fmt::format("dist rendezvous: rank {} of {} lost the TCPStore at {}:{}: {}", w.rank, w.world_size,
                            w.master_addr, w.master_port, detail::short_what(e)));
  }
  std::vector<std::string> keys;
  for (int r = 0; r < w.world_size; ++r) keys.push_back(fmt::format("rank/{}", r));
  try {
    store->wait(keys, timeout);
  } catch (const std::exception& e) {
    std::string missing;
    try {
      for (const auto& k : keys) {
        if (!store->check({k})) missing += (missing.empty() ? "" : ", ") + k.substr(5);
      }
    } catch (const std::exception&) {
      missing = "unknown (store unreachable)";
    }
    throw Error(fmt::format(
        "dist rendezvous: rank {} of {} timed out after {} s waiting for ranks [{}] at {}:{}. Were all {} "
        "processes started, with the same WORLD_SIZE, MASTER_ADDR and MASTER_PORT?",
        w.rank, w.world_size, std::chrono::duration_cast<std::chrono::seconds>(timeout).count(), missing,
        w.master_addr, w.master_port, w.world_size));
  }
  auto ws_bytes = store->get("world_size");
  std::string ws(ws_bytes.begin(), ws_bytes.end());
  RLVR_CONFIG_CHECK(ws == std::to_string(w.world_size),
                    "dist rendezvous: rank {} has WORLD_SIZE {} but rank 0 has {}; all ranks must agree", w.rank,
                    w.world_size, ws);
  return store;
}

// The rendezvous under one deadline of distributed.timeout_s, however it blocks: a TCPStore client whose
// MASTER_PORT is answered by some other server can wait in a read with no timeout of its own, and retries of a
// refused connect add up past the store's timeout. The rendezvous runs on a helper thread; when the deadline
// passes, this thread throws (the helper stays blocked, detached, until the process exits). c10d's per-retry
// warnings are silenced meanwhile: the one error below says what happened.
c10::intrusive_ptr<c10d::Store> rendezvous_with_deadline(const WorldInfo& w, std::chrono::milliseconds timeout) {
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    c10::intrusive_ptr<c10d::Store> store;
    std::exception_ptr error;
  };
  auto sh = std::make_shared<Shared>();
  const int saved_level = FLAGS_caffe2_log_level;
  FLAGS_caffe2_log_level = std::max(saved_level, 3);  // c10 / c10d: fatal only (the timeout is reported by us, once)
  std::thread([sh, w, timeout] {
    c10::intrusive_ptr<c10d::Store> st;
    std::exception_ptr err;
    try {
      st = rendezvous(w, timeout);
    } catch (...) {
      err = std::current_exception();
    }
    std::lock_guard<std::mutex> lk(sh->mu);
    sh->store = std::move(st);
    sh->error = err;
    sh->done = true;
    sh->cv.notify_all();
  }).detach();
  std::unique_lock<std::mutex> lk(sh->mu);
  // A small grace beyond the timeout, so that the rendezvous's own (more specific) timeout errors win.
  const bool finished = sh->cv.wait_for(lk, timeout + std::chrono::seconds(2), [&] { return sh->done; });
  // A rendezvous that timed out leaves its thread blocked in c10d, which would log a stack trace once the level is
  // back: keep c10d quiet then (the run is ending with the error below).
  if (finished) FLAGS_caffe2_log_level = saved_level;
  if (!finished)
    throw Error(fmt::format(
        "dist rendezvous: rank {} of {} cannot reach the TCPStore at {}:{}: no answer within {} s "
        "(distributed.timeout_s). Is MASTER_ADDR:MASTER_PORT rank 0's TCPStore (not another server), and were all "
        "ranks started?",
        w.rank, w.world_size, w.master_addr, w.master_port,
        std::chrono::duration_cast<std::chrono::seconds>(timeout).count()));
  if (sh->error) std::rethrow_exception(sh->error);
  return sh->store;
}

std::string resolve_backend(const DistributedConfig& cfg, c10::Device device) {
  std::string b = cfg.backend;
  choices::index_of("distributed.backend", choices::dist_backend(), b);
  if (b == "auto") return device.is_cuda() ? "nccl" : "gloo";
  if (b == "mpi") {
    throw ConfigError(
        "distributed.backend mpi: the torch 2.11 wheel's libtorch_cpu is built without MPI "
        "(no c10d::ProcessGroupMPI); use gloo on CPU or nccl on GPU");
  }
  if (b == "nccl") {
    RLVR_CONFIG_CHECK(device.is_cuda(), "distributed.backend nccl needs a CUDA device, the run uses {}", device.str());
  }
  if (b == "gloo") {
    RLVR_CONFIG_CHECK(device.is_cpu(),
                      "distributed.backend gloo is used for CPU tensors here; the run uses {} (use nccl or auto)",
                      device.str());
  }
  return b;
}

}  // namespace

std::vector<std::string> available_backends() {
  std::vector<std::string> out{"local"};
  if (detail::gloo_available()) out.push_back("gloo");
  if (detail::nccl_available()) out.push_back("nccl");
  return out;
}

std::unique_ptr<Communicator> make_communicator(const DistributedConfig& cfg, c10::Device device,
                                                const WorldInfo& world) {
  RLVR_CONFIG_CHECK(cfg.timeout_s > 0, "distributed.timeout_s must be > 0, got {}", cfg.timeout_s);
  std::string backend = resolve_backend(cfg, device);
  if (world.world_size == 1 && world.source == "none") return make_local_communicator(device);
  auto timeout = std::chrono::milliseconds(static_cast<int64_t>(cfg.timeout_s) * 1000);
  auto t0 = std::chrono::steady_clock::now();
  auto store = rendezvous_with_deadline(world, timeout);
  std::unique_ptr<Communicator> comm;
  if (backend == "nccl") {
    int index = device.has_index() ? device.index() : -1;  // -1: LOCAL_RANK (or the only visible GPU)
    comm = detail::make_nccl_communicator(store, world, index, timeout);
  } else {
    c10::intrusive_ptr<c10d::Backend> pg;
    try {
      pg = detail::create_gloo_backend(c10::make_intrusive<c10d::PrefixStore>("gloo", store), world.rank,
                                       world.world_size, timeout, world.master_addr);
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      throw Error(fmt::format("dist: gloo setup failed on rank {} of {} (timeout {} s): {}", world.rank,
                              world.world_size, cfg.timeout_s, detail::short_what(e)));
    }
    comm = detail::make_c10d_communicator(store, pg, world, timeout, "gloo");
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  log::info("dist: rank {} of {} (local {}), backend {}, {} via {}:{} ({}) in {:.2f} s", world.rank, world.world_size,
            world.local_rank, comm->backend(), comm->device().str(), world.master_addr, world.master_port,
            world.source, secs);
  log::set_rank(world.rank);  // ranks > 0 log warnings and errors only, prefixed with their rank
  return comm;
}

std::unique_ptr<Communicator> make_communicator(const DistributedConfig& cfg, c10::Device device) {
  WorldInfo w = world_from_env();
  const bool force = env_true("RLVR_DIST_FORCE_BACKEND");
  if (w.world_size == 1 && !force) {
    resolve_backend(cfg, device);  // still validate the config
    return make_local_communicator(device);
  }
  if (w.source == "none") {  // forced 1-rank group without a launcher: the store address from the environment
    w.source = "forced";
    w.master_addr = env("MASTER_ADDR").value_or("127.0.0.1");
    w.master_port = env_int_or("MASTER_PORT", 29500, 1, 65535);
  }
  return make_communicator(cfg, device, w);
}

}  // namespace rlvr::dist
