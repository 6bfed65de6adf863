// OverlappedGradReducer: see overlap.h.
#include "trainer/dist/overlap.h"

#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <functional>

#include "common/error.h"

namespace rlvr::dist {
namespace {

struct ReadyHook : torch::autograd::PostAccumulateGradHook {
  std::function<void()> fn;
  explicit ReadyHook(std::function<void()> f) : fn(std::move(f)) {}
  void operator()(const torch::autograd::Variable&) override { fn(); }
};

}  // namespace

OverlappedGradReducer::OverlappedGradReducer(Communicator& comm, std::vector<at::Tensor> params, ReduceOp op,
                                             double bucket_mb)
    : comm_(comm), op_(op) {
  for (auto& p : params)
    if (p.defined() && p.requires_grad()) params_.push_back(p);
  RLVR_CHECK(!params_.empty(), "OverlappedGradReducer: no trainable parameters");
  RLVR_CHECK(bucket_mb > 0, "OverlappedGradReducer: bucket_mb must be > 0, got {}", bucket_mb);
  const auto cap = static_cast<int64_t>(bucket_mb * 1024 * 1024);
  const int64_t n = static_cast<int64_t>(params_.size());
  bucket_of_.assign(n, -1);
  is_ready_.assign(n, 0);
  // Reverse order; a new bucket when the bytes would pass the cap or the dtype changes (one flat buffer each).
  int64_t bytes = 0;
  for (int64_t i = n - 1; i >= 0; --i) {
    const auto& p = params_[i];
    const int64_t nb = p.numel() * static_cast<int64_t>(p.element_size());
    const bool new_bucket = buckets_.empty() || bytes + nb > cap ||
                            params_[buckets_.back().members.front()].scalar_type() != p.scalar_type();
    if (new_bucket) {
      buckets_.emplace_back();
      bytes = 0;
    }
    buckets_.back().members.push_back(i);
    bucket_of_[i] = static_cast<int64_t>(buckets_.size()) - 1;
    bytes += nb;
  }
  for (int64_t i = 0; i < n; ++i) {
    torch::autograd::impl::set_post_acc_grad_hooks(params_[i], std::make_unique<ReadyHook>([this, i] {
      std::lock_guard<std::mutex> lk(mu_);
      if (armed_) on_ready(i);
    }));
  }
  thread_ = std::thread([this] { worker(); });
}

OverlappedGradReducer::~OverlappedGradReducer() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
    armed_ = false;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (auto& p : params_) torch::autograd::impl::set_post_acc_grad_hooks(p, nullptr);
}

void OverlappedGradReducer::reset_round() {
  for (auto& b : buckets_) b.ready = 0, b.flat = at::Tensor();
  std::fill(is_ready_.begin(), is_ready_.end(), 0);
  next_ = 0;
  launched_early_ = 0;
}

void OverlappedGradReducer::arm() {
  std::lock_guard<std::mutex> lk(mu_);
  RLVR_CHECK(!armed_, "OverlappedGradReducer: arm() twice without finish()");
  reset_round();
  armed_ = true;
}

void OverlappedGradReducer::on_ready(int64_t i) {
  if (is_ready_[i]) return;
  is_ready_[i] = 1;
  ++buckets_[bucket_of_[i]].ready;
  const size_t before = next_;
  launch_ready_in_order();
  launched_early_ += static_cast<int64_t>(next_ - before);
}

void OverlappedGradReducer::launch_ready_in_order() {
  while (next_ < buckets_.size() &&
         buckets_[next_].ready == static_cast<int64_t>(buckets_[next_].members.size())) {
    launch(buckets_[next_]);
    ++next_;
  }
}

void OverlappedGradReducer::launch(Bucket& b) {
  std::vector<at::Tensor> parts;
  parts.reserve(b.members.size());
  for (int64_t i : b.members) {
    auto& p = params_[i];
    if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
    parts.push_back(p.grad().detach().reshape({-1}));
  }
  b.flat = at::cat(parts).to(comm_.device());  // a copy: the backward may go on with other tensors
  queue_.push_back(&b);
  ++in_flight_;
  cv_.notify_all();
}

void OverlappedGradReducer::worker() {
  while (true) {
    Bucket* b = nullptr;
    bool failed = false;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop_
      b = queue_.front();
      queue_.pop_front();
      failed = error_ != nullptr;  // after a failure the communicator is broken: only drain the queue
    }
    try {
      at::NoGradGuard ng;
      if (!failed) comm_.all_reduce(b->flat, op_);
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu_);
      if (!error_) error_ = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      --in_flight_;
    }
    cv_.notify_all();
  }
}

void OverlappedGradReducer::finish() {
  std::unique_lock<std::mutex> lk(mu_);
  if (!armed_) reset_round();  // no armed backward on this rank: reduce everything now
  // Whatever the backward did not complete (or no backward at all), in index order, zero-filled.
  for (size_t k = next_; k < buckets_.size(); ++k) launch(buckets_[k]);
  next_ = buckets_.size();
  armed_ = false;
  cv_.wait(lk, [this] { return in_flight_ == 0; });
  if (error_) {
    auto e = error_;
    error_ = nullptr;
    std::rethrow_exception(e);
  }
  at::NoGradGuard ng;
  for (auto& b : buckets_) {
    int64_t off = 0;
    for (int64_t i : b.members) {
      auto& g = params_[i].mutable_grad();
      const int64_t n = g.numel();
      g.copy_(b.flat.narrow(0, off, n).view(g.sizes()));
      off += n;
    }
    b.flat = at::Tensor();
  }
}

}  // namespace rlvr::dist
