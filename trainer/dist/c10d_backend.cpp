// A Communicator over a generic c10d::Backend (ProcessGroupGloo on CPU). Only Backend.hpp's virtual
// interface is used here, so this TU never sees Gloo's headers. Every Work is waited with the configured
// timeout (c10d's Work::wait throws "Operation timed out!" past it; Gloo's own context timeout and its
// "connection closed by peer" errors usually come first).
#include <torch/csrc/distributed/c10d/Types.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include "common/error.h"
#include "trainer/dist/detail.h"

namespace rlvr::dist::detail {

namespace {

c10d::ReduceOp to_c10d(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum: return c10d::ReduceOp::SUM;
    case ReduceOp::avg: return c10d::ReduceOp::AVG;
    case ReduceOp::max: return c10d::ReduceOp::MAX;
    case ReduceOp::min: return c10d::ReduceOp::MIN;
  }
  return c10d::ReduceOp::SUM;
}

class C10dCommunicator final : public Communicator {
 public:
  C10dCommunicator(c10::intrusive_ptr<c10d::Store> store, c10::intrusive_ptr<c10d::Backend> backend,
                   const WorldInfo& w, std::chrono::milliseconds timeout, std::string name)
      : Communicator(w.rank, w.world_size, w.local_rank, timeout),
        store_(std::move(store)),
        backend_(std::move(backend)),
        name_(std::move(name)) {}

  ~C10dCommunicator() override {
    if (broken()) {
      // A failed backend may have worker threads blocked on dead peers; its destructor would join them.
      // Leak it (and the store it uses): the process is about to report the error and exit.
      (void)backend_.release();
      (void)store_.release();
    }
  }

  std::string backend() const override { return name_; }
  c10::Device device() const override { return c10::Device(c10::kCPU); }

 protected:
  void all_reduce_flat(at::Tensor& flat, ReduceOp op) override {
    std::vector<at::Tensor> v{flat};
    c10d::AllreduceOptions o;
    o.reduceOp = to_c10d(op);
    o.timeout = timeout();
    wait(backend_->allreduce(v, o));
  }
  void broadcast_flat(at::Tensor& flat, int root) override {
    std::vector<at::Tensor> v{flat};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    o.timeout = timeout();
    wait(backend_->broadcast(v, o));
  }
  void all_gather_flat(at::Tensor& out, const at::Tensor& in) override {
    at::Tensor input = in;
    c10d::AllgatherOptions o;
    o.timeout = timeout();
    wait(backend_->_allgather_base(out, input, o));
  }
  void reduce_scatter_flat(at::Tensor& out, const at::Tensor& in, ReduceOp op) override {
    at::Tensor input = in;
    c10d::ReduceScatterOptions o;
    o.reduceOp = to_c10d(op);
    o.timeout = timeout();
    wait(backend_->_reduce_scatter_base(out, input, o));
  }
  void barrier_impl() override {
    c10d::BarrierOptions o;
    o.timeout = timeout();
    wait(backend_->barrier(o));
  }

 private:
  void wait(const c10::intrusive_ptr<c10d::Work>& work) {
    RLVR_CHECK(work, "{}: backend returned no work item", name_);
    work->wait(timeout());
  }

  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::Backend> backend_;
  std::string name_;
};

}  // namespace

std::unique_ptr<Communicator> make_c10d_communicator(c10::intrusive_ptr<c10d::Store> store,
                                                     c10::intrusive_ptr<c10d::Backend> backend,
                                                     const WorldInfo& world, std::chrono::milliseconds timeout,
                                                     std::string name) {
  return std::make_unique<C10dCommunicator>(std::move(store), std::move(backend), world, timeout, std::move(name));
}

}  // namespace rlvr::dist::detail
