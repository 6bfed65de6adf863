// Gradient all-reduce overlapped with the backward, as DDP does it. Parameters are grouped into buckets in
// reverse order (roughly the order in which the backward finishes their gradients). While armed, a
// post-accumulate-grad hook on each parameter marks it ready; when every parameter of the next bucket (in index
// order) is ready, its gradients are flattened and a background thread all-reduces them while the backward goes
// on. finish() launches what is left (zero-filling gradients a rank never produced, like DDP's
// find_unused_parameters), waits, and writes the reduced values back into .grad().
//
// Every rank launches the buckets in the same index order, whatever its timing, so the collectives always
// match. The communicator is used only by the background thread between arm() and finish(); the caller must
// not issue other collectives in that window. Used for the Gloo backend (CPU backward runs hooks on the calling
// thread); NCCL and ZeRO-1 keep the synchronous Communicator::all_reduce_gradients / reduce-scatter.
#pragma once
#include <ATen/ATen.h>

#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "trainer/dist/communicator.h"

namespace rlvr::dist {

class OverlappedGradReducer {
 public:
  // params: the trainable parameters, same order and shapes on every rank. bucket_mb: bucket size in MB.
  OverlappedGradReducer(Communicator& comm, std::vector<at::Tensor> params, ReduceOp op, double bucket_mb = 25.0);
  ~OverlappedGradReducer();  // removes the hooks and stops the thread
  OverlappedGradReducer(const OverlappedGradReducer&) = delete;
  OverlappedGradReducer& operator=(const OverlappedGradReducer&) = delete;

  // Call right before the backward that completes the gradients (the last micro-batch of an optimizer step).
  void arm();
  // Call after that backward (or instead of it, when this rank has nothing to back-propagate): every .grad()
  // then holds the reduction over ranks. Rethrows a failed collective's Error. Collective.
  void finish();

  int64_t buckets() const { return static_cast<int64_t>(buckets_.size()); }
  int64_t launched_during_backward() const { return launched_early_; }  // of the last finish(), for tests

 private:
  struct Bucket {
    std::vector<int64_t> members;  // indices into params_
    int64_t ready = 0;
    at::Tensor flat;               // flattened gradients, reduced in place by the thread
  };
  void reset_round();            // (under mu_)
  void on_ready(int64_t param);  // called by the hook (under mu_)
  void launch_ready_in_order();  // launches buckets next_ .. while complete (under mu_)
  void launch(Bucket& b);        // flatten + enqueue (under mu_)
  void worker();

  Communicator& comm_;
  std::vector<at::Tensor> params_;
  ReduceOp op_;
  std::vector<Bucket> buckets_;
  std::vector<int64_t> bucket_of_;  // param -> bucket
  std::vector<char> is_ready_;      // param -> ready in this round

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Bucket*> queue_;
  int64_t in_flight_ = 0;
  bool armed_ = false, stop_ = false;
  size_t next_ = 0;                 // next bucket to launch
  int64_t launched_early_ = 0;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace rlvr::dist
