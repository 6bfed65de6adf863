// rlvr::dist::Communicator: data-parallel collectives for the trainer. One process per rank;
// NCCL on CUDA (raw NCCL, unique id exchanged through a c10d::TCPStore), c10d ProcessGroupGloo on CPU,
// and a local no-op communicator for world_size 1. Every collective is bounded by distributed.timeout_s:
// a peer that dies or hangs makes the others throw rlvr::Error instead of hanging.
#pragma once
#include <ATen/ATen.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "trainer/config.h"

namespace rlvr::dist {

enum class ReduceOp { sum, avg, max, min };
const char* to_string(ReduceOp op);

// Where this process sits in the job, read from the environment by world_from_env().
//  - torchrun / `rlvr launch`: RANK, WORLD_SIZE, LOCAL_RANK (default 0), LOCAL_WORLD_SIZE (default
//    WORLD_SIZE), MASTER_ADDR (default 127.0.0.1), MASTER_PORT (default 29500).
//    TORCHELASTIC_USE_AGENT_STORE=True means the launcher already hosts the TCPStore at
//    MASTER_ADDR:MASTER_PORT (torchrun's elastic agent, `rlvr launch`), so rank 0 connects as a client;
//    keys then live under "/worker/attempt_<TORCHELASTIC_RESTART_COUNT>" as in torch.distributed.
//  - SLURM via srun (only when RANK is absent): SLURM_PROCID -> rank, SLURM_NTASKS -> world_size,
//    SLURM_LOCALID -> local_rank, MASTER_ADDR = first host of SLURM_STEP_NODELIST / SLURM_JOB_NODELIST
//    (unless MASTER_ADDR is set), MASTER_PORT = 20000 + SLURM_JOB_ID % 10000 (unless set). Requires
//    SLURM_STEP_ID from a real srun step, so a plain process in an sbatch script stays single-process.
//    RLVR_DIST_IGNORE_SLURM=1 disables SLURM detection.
//  - nothing set: rank 0 of 1 (source "none").
// Throws ConfigError on malformed or inconsistent values (rank >= world_size, bad port, ...).
struct WorldInfo {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  bool use_agent_store = false;  // the TCPStore server is hosted outside the ranks (launcher)
  int restart_count = 0;         // TORCHELASTIC_RESTART_COUNT: store key prefix
  std::string source = "none";   // "torchrun" | "slurm" | "none"
};
WorldInfo world_from_env();
// First hostname of a SLURM hostlist: "gpu[003-005,9],cpu1" -> "gpu003". Exposed for tests.
std::string first_slurm_host(const std::string& nodelist);

// The collective interface. All ranks must call the same collectives in the same order with tensors of
// the same shape and dtype (all_reduce, broadcast, all_gather, reduce_scatter) — as in torch.distributed.
// Tensors must live on device() (CPU for gloo/local, the rank's GPU for nccl); non-contiguous tensors are
// accepted (staged through a contiguous copy). Calls block until the result is in place (NCCL: until the
// work on the current CUDA stream finished), so results are ready when the call returns.
// Failures (a peer exited, crashed, hung past timeout(), a transport error) throw rlvr::Error naming the
// operation, this rank and the backend; after one failure the communicator is broken and every later
// call throws at once. A broken communicator's destructor does not wait for peers.
// Not thread-safe: call from one thread (the training loop).
class Communicator {
 public:
  virtual ~Communicator() = default;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  int local_rank() const { return local_rank_; }
  bool is_main() const { return rank_ == 0; }
  std::chrono::milliseconds timeout() const { return timeout_; }
  virtual std::string backend() const = 0;  // "local" | "gloo" | "nccl"
  virtual c10::Device device() const = 0;   // where collective tensors must live

  // In-place all-reduce. Several tensors (any mix of shapes and dtypes) are coalesced per dtype into
  // flat buffers of at most `bucket_bytes` (default 25 MB), so it is one collective per bucket, not per
  // tensor. avg = sum / world_size (floating dtypes only; integer avg throws).
  void all_reduce(std::vector<at::Tensor>& tensors, ReduceOp op = ReduceOp::sum);
  void all_reduce(at::Tensor& tensor, ReduceOp op = ReduceOp::sum);
  // Scalars (metrics: loss, reward means, token counts), reduced in float64.
  double all_reduce_scalar(double value, ReduceOp op = ReduceOp::sum);
  std::vector<double> all_reduce_scalars(const std::vector<double>& values, ReduceOp op = ReduceOp::sum);

  // Overwrites each tensor on every rank with root's value.
  void broadcast(std::vector<at::Tensor>& tensors, int root = 0);
  void broadcast(at::Tensor& tensor, int root = 0);

  // Returns a new tensor [world_size, *tensor.shape] whose row r is rank r's tensor.
  at::Tensor all_gather(const at::Tensor& tensor);

  // input: [world_size * n, ...] (contiguous along dim 0); output: [n, ...] = reduction over ranks of the
  // rank-th chunk of dim 0. The ZeRO-1 building block (with all_gather).
  at::Tensor reduce_scatter(const at::Tensor& input, ReduceOp op = ReduceOp::sum);

  // Returns when every rank has reached it (or throws after timeout()).
  void barrier();

  // Data-parallel gradient reduction: reduces p.grad() of every parameter that requires grad, in place,
  // in buckets of `bucket_mb` MB (flatten -> one all-reduce per bucket -> unflatten), op = avg for the
  // usual mean over ranks or sum when the loss is already normalised by the global token count.
  // A parameter whose grad is undefined on this rank gets a zero grad first, so every rank issues the
  // same collectives (as DDP's find_unused_parameters does). Parameters must be in the same order on
  // every rank (module->parameters() is).
  void all_reduce_gradients(const std::vector<at::Tensor>& params, ReduceOp op = ReduceOp::avg,
                            double bucket_mb = 25.0);
  // The same bucketing on arbitrary tensors (all defined).
  void all_reduce_bucketed(std::vector<at::Tensor>& tensors, ReduceOp op, double bucket_mb = 25.0);

  // Bytes that went through collectives on this rank so far (payload, for metrics / bench).
  int64_t bytes_reduced() const { return bytes_; }

 protected:
  Communicator(int rank, int world_size, int local_rank, std::chrono::milliseconds timeout)
      : rank_(rank), world_size_(world_size), local_rank_(local_rank), timeout_(timeout) {}

  // Backend primitives on one contiguous tensor on device(). Implementations throw rlvr::Error on
  // failure (the base class marks the communicator broken and prefixes the operation).
  virtual void all_reduce_flat(at::Tensor& flat, ReduceOp op) = 0;  // op never avg unless native_avg()
  virtual bool native_avg() const { return false; }
  virtual void broadcast_flat(at::Tensor& flat, int root) = 0;
  virtual void all_gather_flat(at::Tensor& out, const at::Tensor& in) = 0;  // out: [world * in.numel()]
  virtual void reduce_scatter_flat(at::Tensor& out, const at::Tensor& in, ReduceOp op);  // default: all_reduce + narrow
  virtual void barrier_impl() = 0;
  // Called once after a failure: release transport resources without waiting on peers.
  virtual void abort() noexcept {}

  bool broken() const { return !broken_reason_.empty(); }

 private:
  template <class F> void guarded(const char* what, const at::Tensor* t, F&& f);
  void check_tensor(const at::Tensor& t, const char* what) const;
  void reduce_one(at::Tensor& t, ReduceOp op);

  int rank_, world_size_, local_rank_;
  std::chrono::milliseconds timeout_;
  std::string broken_reason_;
  int64_t bytes_ = 0;
};

// Builds the communicator for this process (call once, early, before loading the model):
//  - world_from_env() says world_size == 1: a local communicator (collectives are no-ops, all_gather
//    stacks the one tensor) — one process is the world_size 1 case of the same call. Unless the environment
//    has RLVR_DIST_FORCE_BACKEND=1: then a 1-rank group of the real backend is built (rendezvous on
//    MASTER_ADDR:MASTER_PORT, default 127.0.0.1:29500), so that one GPU can check that NCCL initialises.
//  - otherwise rendezvous through c10d::TCPStore at MASTER_ADDR:MASTER_PORT (rank 0 hosts it unless the
//    launcher does), all ranks check they agree on world_size and that ranks are unique, then the
//    backend is created. cfg.backend: "auto" (nccl when `device` is CUDA, else gloo) | "nccl" | "gloo" |
//    "mpi" (rejected: the torch wheel's libtorch_cpu is built without MPI; use gloo).
//  - NCCL: one process per GPU; the device is cuda:<device.index()>, or when `device` has no index
//    cuda:<LOCAL_RANK> (cuda:0 if the process sees a single GPU), and is made current; place the model
//    on comm->device(). Only in builds with RLVR_HAS_CUDA.
// cfg.timeout_s bounds the rendezvous and every collective. Throws ConfigError for a bad config or
// environment and rlvr::Error when the rendezvous fails. With world_size > 1 it also calls
// log::set_rank(rank), so ranks > 0 log only warnings and errors, prefixed with their rank.
std::unique_ptr<Communicator> make_communicator(const DistributedConfig& cfg, c10::Device device = c10::kCPU);
// The same from an explicit WorldInfo (tests, benches, device checks). A WorldInfo with source "none"
// and world_size 1 gives the local communicator; any other source (e.g. "test") always rendezvous and
// builds the real backend, also for world_size 1 (a 1-rank NCCL or Gloo group).
std::unique_ptr<Communicator> make_communicator(const DistributedConfig& cfg, c10::Device device,
                                                const WorldInfo& world);
std::unique_ptr<Communicator> make_local_communicator(c10::Device device = c10::kCPU);

// Which backends this build can create (e.g. {"local", "gloo", "nccl"}).
std::vector<std::string> available_backends();

}  // namespace rlvr::dist
