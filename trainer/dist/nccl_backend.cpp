// NCCL communicator (CUDA builds): raw NCCL from the torch wheel, one process per GPU. Rank 0 creates the
// unique id and publishes it through the c10d store; the communicator is created non-blocking so that
// init and every collective can be polled against distributed.timeout_s and aborted (ncclCommAbort)
// instead of hanging on a dead peer. Only the generic c10::Stream/c10::Event API is used for completion,
// so this TU adds no direct libcudart dependency (and never libcuda).
#include <c10/core/Event.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>
#include <nccl.h>

#include <thread>

#include "common/error.h"
#include "trainer/dist/detail.h"

namespace rlvr::dist::detail {

bool nccl_available() { return true; }

namespace {

ncclDataType_t to_nccl(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return ncclFloat32;
    case at::kDouble: return ncclFloat64;
    case at::kHalf: return ncclFloat16;
    case at::kBFloat16: return ncclBfloat16;
    case at::kInt: return ncclInt32;
    case at::kLong: return ncclInt64;
    case at::kChar: return ncclInt8;
    case at::kByte: return ncclUint8;
    case at::kBool: return ncclUint8;
    default: break;
  }
  throw Error(fmt::format("nccl: dtype {} is not supported", c10::toString(t)));
}

ncclRedOp_t to_nccl(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum: return ncclSum;
    case ReduceOp::avg: return ncclAvg;
    case ReduceOp::max: return ncclMax;
    case ReduceOp::min: return ncclMin;
  }
  return ncclSum;
}

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(c10::intrusive_ptr<c10d::Store> store, const WorldInfo& w, int device_index,
                   std::chrono::milliseconds timeout)
      : Communicator(w.rank, w.world_size, w.local_rank, timeout), store_(std::move(store)), index_(device_index) {
    int count = c10::cuda::device_count();
    RLVR_CHECK(count > 0, "nccl: rank {} sees no CUDA device", w.rank);
    // No explicit index: cuda:LOCAL_RANK, or the only visible GPU when the launcher gives each rank one
    // (srun --gpus-per-task 1 / CUDA_VISIBLE_DEVICES per rank).
    if (index_ < 0) index_ = count == 1 ? 0 : w.local_rank;
    RLVR_CHECK(index_ >= 0 && index_ < count,
               "nccl: rank {} wants cuda:{} but only {} CUDA devices are visible (LOCAL_RANK {}; one process per GPU)",
               w.rank, index_, count, w.local_rank);
    c10::cuda::set_device(static_cast<c10::DeviceIndex>(index_));
    ncclUniqueId id;
    const std::string key = "nccl/unique_id";
    if (w.rank == 0) {
      check(ncclGetUniqueId(&id), "ncclGetUniqueId");
      auto* p = reinterpret_cast<const uint8_t*>(&id);
      store_->set(key, std::vector<uint8_t>(p, p + sizeof(id)));
    } else {
      std::vector<uint8_t> bytes;
      try {
        bytes = store_->get(key);  // waits up to the store timeout
      } catch (const std::exception& e) {
        throw Error(fmt::format("nccl: rank {} did not receive the unique id from rank 0 within {} s: {}", w.rank,
                                std::chrono::duration_cast<std::chrono::seconds>(timeout).count(), short_what(e)));
      }
      RLVR_CHECK(bytes.size() == sizeof(id), "nccl: unique id of {} bytes, expected {}", bytes.size(), sizeof(id));
      std::memcpy(&id, bytes.data(), sizeof(id));
    }
    ncclConfig_t cfg = NCCL_CONFIG_INITIALIZER;
    cfg.blocking = 0;
    check(ncclCommInitRankConfig(&comm_, w.world_size, id, w.rank, &cfg), "ncclCommInitRankConfig");
    try {
      wait_state("init");
    } catch (...) {
      if (comm_ != nullptr) ncclCommAbort(comm_);
      comm_ = nullptr;
      throw;
    }
  }

  ~NcclCommunicator() override {
    if (comm_ == nullptr) return;
    if (broken()) {
      ncclCommAbort(comm_);
      return;
    }
    // Flush and free; if a peer is gone, fall back to abort after the timeout.
    try {
      c10::cuda::set_device(static_cast<c10::DeviceIndex>(index_));
      check(ncclCommFinalize(comm_), "ncclCommFinalize");
      wait_state("finalize");
      ncclCommDestroy(comm_);
    } catch (const std::exception&) {
      ncclCommAbort(comm_);
    }
    comm_ = nullptr;
  }

  std::string backend() const override { return "nccl"; }
  c10::Device device() const override { return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index_)); }

 protected:
  bool native_avg() const override { return true; }

  void all_reduce_flat(at::Tensor& flat, ReduceOp op) override {
    run("ncclAllReduce", [&](cudaStream_t s) {
      return ncclAllReduce(flat.data_ptr(), flat.data_ptr(), flat.numel(), to_nccl(flat.scalar_type()), to_nccl(op),
                           comm_, s);
    });
  }
  void broadcast_flat(at::Tensor& flat, int root) override {
    run("ncclBroadcast", [&](cudaStream_t s) {
      return ncclBroadcast(flat.data_ptr(), flat.data_ptr(), flat.numel(), to_nccl(flat.scalar_type()), root, comm_, s);
    });
  }
  void all_gather_flat(at::Tensor& out, const at::Tensor& in) override {
    run("ncclAllGather", [&](cudaStream_t s) {
      return ncclAllGather(in.data_ptr(), out.data_ptr(), in.numel(), to_nccl(in.scalar_type()), comm_, s);
    });
  }
  void reduce_scatter_flat(at::Tensor& out, const at::Tensor& in, ReduceOp op) override {
    run("ncclReduceScatter", [&](cudaStream_t s) {
      return ncclReduceScatter(in.data_ptr(), out.data_ptr(), out.numel(), to_nccl(in.scalar_type()), to_nccl(op),
                               comm_, s);
    });
  }
  void barrier_impl() override {
    at::Tensor one = at::ones({1}, at::TensorOptions().dtype(at::kFloat).device(device()));  // [1]
    all_reduce_flat(one, ReduceOp::sum);
  }
  void abort() noexcept override {
    if (comm_ != nullptr) ncclCommAbort(comm_);
    comm_ = nullptr;
  }

 private:
  void check(ncclResult_t r, const char* what) {
    if (r == ncclSuccess || r == ncclInProgress) return;
    const char* last = comm_ != nullptr ? ncclGetLastError(comm_) : nullptr;
    throw Error(fmt::format("{} failed on rank {}: {}{}{}", what, rank(), ncclGetErrorString(r),
                            last && *last ? ": " : "", last ? last : ""));
  }

  // Polls the communicator's state until it leaves ncclInProgress (non-blocking init / enqueue / finalize).
  void wait_state(const char* what) {
    auto deadline = std::chrono::steady_clock::now() + timeout();
    for (int spin = 0;; ++spin) {
      ncclResult_t st = ncclSuccess;
      check(ncclCommGetAsyncError(comm_, &st), "ncclCommGetAsyncError");
      if (st == ncclSuccess) return;
      if (st != ncclInProgress) check(st, what);
      if (std::chrono::steady_clock::now() > deadline) {
        throw Error(fmt::format("nccl {} timed out on rank {} after {} s", what, rank(),
                                std::chrono::duration_cast<std::chrono::seconds>(timeout()).count()));
      }
      backoff(spin);
    }
  }

  // Enqueues one collective on the current stream and polls until it (and the work queued before it on
  // that stream) completed, a NCCL error is reported, or the timeout passes.
  template <class F>
  void run(const char* what, F&& enqueue) {
    RLVR_CHECK(comm_ != nullptr, "nccl: {} on rank {} after the communicator was aborted", what, rank());
    c10::cuda::set_device(static_cast<c10::DeviceIndex>(index_));
    c10::cuda::CUDAStream stream = c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(index_));
    check(enqueue(stream.stream()), what);
    wait_state(what);
    c10::Event done(c10::DeviceType::CUDA);
    done.record(c10::Stream(stream));
    auto deadline = std::chrono::steady_clock::now() + timeout();
    for (int spin = 0; !done.query(); ++spin) {
      ncclResult_t st = ncclSuccess;
      check(ncclCommGetAsyncError(comm_, &st), "ncclCommGetAsyncError");
      if (st != ncclSuccess && st != ncclInProgress) check(st, what);
      if (std::chrono::steady_clock::now() > deadline) {
        throw Error(fmt::format("{} did not complete within {} s on rank {} (cuda:{}): a peer rank is gone or stuck",
                                what, std::chrono::duration_cast<std::chrono::seconds>(timeout()).count(), rank(),
                                index_));
      }
      backoff(spin);
    }
  }

  static void backoff(int spin) {
    if (spin < 100) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(spin < 1000 ? 50 : 1000));
    }
  }

  c10::intrusive_ptr<c10d::Store> store_;
  int index_;
  ncclComm_t comm_ = nullptr;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(c10::intrusive_ptr<c10d::Store> store, const WorldInfo& world,
                                                     int device_index, std::chrono::milliseconds timeout) {
  return std::make_unique<NcclCommunicator>(std::move(store), world, device_index, timeout);
}

}  // namespace rlvr::dist::detail
