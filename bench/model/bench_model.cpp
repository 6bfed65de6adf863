// bench_model: CausalLM tokens per second on CPU, forward (no grad) or forward+backward through
// lm_head_logprobs, on the same inputs as bench/model/hf_forward.py (B rows of T tokens, the last row
// right-padded by a quarter). Prints one JSON line; bench/model/run.sh puts it beside transformers.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "model/causal_lm.h"
#include "model/lm_head_logprobs.h"

int main(int argc, char** argv) {
  CLI::App app{"CausalLM forward tokens/s"};
  std::string model, mode = "forward";
  int batch = 4, seq = 256, threads = 2, reps = 3;
  bool ckpt = false;
  app.add_option("--model", model)->required();
  app.add_option("--batch", batch);
  app.add_option("--seq", seq);
  app.add_option("--threads", threads);
  app.add_option("--reps", reps);
  app.add_option("--mode", mode)->check(CLI::IsMember({"forward", "train"}));
  app.add_flag("--checkpointing", ckpt, "gradient checkpointing (train mode)");
  CLI11_PARSE(app, argc, argv);
  at::set_num_threads(threads);
  auto lm = rlvr::model::CausalLM::from_pretrained(model, at::kCPU, at::kFloat);
  const int64_t B = batch, T = seq, V = lm->args().vocab_size;
  auto ids = (at::arange(B * T, at::kLong).view({B, T}) * 7919 + 13).remainder(V);  // [B, T]
  auto mask = at::ones({B, T}, at::kLong);
  mask[B - 1].narrow(0, T - T / 4, T / 4).zero_();
  const int64_t tokens = mask.sum().item<int64_t>();
  rlvr::model::ForwardOptions opts;
  opts.gradient_checkpointing = ckpt;

  auto step = [&] {
    if (mode == "forward") {
      lm->module().eval();
      at::NoGradGuard ng;
      lm->forward(ids, at::Tensor(), mask);
    } else {
      lm->module().train();
      auto h = lm->forward_hidden(ids, at::Tensor(), mask, opts);  // [B, T, H]
      auto hs = h.narrow(1, 0, T - 1).reshape({B * (T - 1), h.size(2)});  // [N, H]: every next-token prediction
      auto lp = rlvr::model::lm_head_logprobs(hs, lm->lm_head_weight(), ids.narrow(1, 1, T - 1).reshape({-1})).logp;
      (lp * mask.narrow(1, 1, T - 1).reshape({-1})).sum().backward();
      for (auto& p : lm->parameters()) p.mutable_grad() = at::Tensor();
    }
  };
  step();  // warm-up
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    step();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  nlohmann::json j{{"impl", "rlvr"},     {"mode", mode},
                   {"tokens", tokens},   {"seconds", best},
                   {"tokens_per_s", static_cast<double>(tokens) / best}, {"threads", threads},
                   {"checkpointing", ckpt}};
  std::cout << j.dump() << std::endl;
  return 0;
}
