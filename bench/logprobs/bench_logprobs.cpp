// bench_logprobs: forward + backward of response log-probs on CPU, gradient checkpointing on, by the GRPO update's
// path: trainer::fused_response_loss (forward_hidden, then the lm_head at response positions with the gradient of
// the loss, here sum(log-probs), formed chunk by chunk in the forward); with --unfused through
// trainer::response_logprobs (lm_head_logprobs, whose backward recomputes each chunk's logits) and backward().
// Reads the token ids that bench/logprobs/trl_logprobs.py scores; prints one JSON line (times, peak RSS, the
// log-prob sum). One configuration per process; the peak is reset after loading, so it is the step's.
// With --head-rows N it times the lm_head alone (random fp32 hidden [N, hidden] and weight [vocab, hidden], no
// model) at --chunk-rows, to compare chunk heights (fused, or lm_head_logprobs with --unfused).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/host_memory.h"
#include "model/causal_lm.h"
#include "model/lm_head_logprobs.h"
#include "trainer/batch.h"
#include "trainer/response_loss.h"

namespace {

double rss_mb() {
  std::ifstream f("/proc/self/statm");
  long pages = 0, resident = 0;
  f >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGE_SIZE)) / (1 << 20);
}

// Linux: "5" resets VmHWM, so the peak read below is this step's, not the checkpoint load's (mmap + copy).
void reset_peak() { std::ofstream("/proc/self/clear_refs") << "5"; }

double peak_rss_mb() {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // kB
  return -1;
}

double seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// d sum(logp) / d logp = 1 for every token.
std::pair<at::Tensor, at::Tensor> ones_grad(const at::Tensor& logp) { return {at::ones_like(logp), at::Tensor()}; }

// The lm_head alone: forward + backward of sum(log-probs) of N random rows through a random [V, H] weight.
nlohmann::json bench_head(int64_t N, int64_t H, int64_t V, int64_t chunk_rows, double temperature, bool unfused) {
  at::manual_seed(0);
  auto h = (at::randn({N, H}) * 0.05).requires_grad_();
  auto w = (at::randn({V, H}) * 0.02).requires_grad_();
  auto tgt = at::randint(V, {N});
  const double base = rss_mb();
  reset_peak();
  rlvr::model::LmHeadLogprobOptions o;
  o.temperature = temperature;
  o.chunk_rows = chunk_rows;
  auto t0 = std::chrono::steady_clock::now();
  at::Tensor loss, carrier;
  if (unfused) {
    loss = rlvr::model::lm_head_logprobs(h, w, tgt, o).logp.sum();
  } else {
    auto r = rlvr::model::lm_head_fused_loss(h, w, tgt, o, [](int64_t, const at::Tensor& lp, const at::Tensor&) {
      return ones_grad(lp);
    });
    carrier = r.carrier;
    loss = r.logp.sum();
  }
  auto t1 = std::chrono::steady_clock::now();
  (unfused ? loss : carrier).backward();
  auto t2 = std::chrono::steady_clock::now();
  return {{"impl", unfused ? "rlvr lm_head_logprobs" : "rlvr lm_head_fused_loss"},
          {"rows", N}, {"hidden", H}, {"vocab", V}, {"chunk_rows", chunk_rows},
          {"forward_s", seconds(t0, t1)}, {"backward_s", seconds(t1, t2)}, {"total_s", seconds(t0, t2)},
          {"rss_loaded_mb", base}, {"peak_rss_mb", peak_rss_mb()}, {"logp_sum", loss.item<double>()}};
}

}  // namespace

int main(int argc, char** argv) {
  rlvr::tune_host_allocator();  // as the rlvr binary does
  CLI::App app{"response log-probs forward + backward: time and peak memory"};
  std::string model, ids_file;
  int prompt = 256, threads = 2;
  double temperature = 1.0;
  bool entropy = false;
  int64_t head_rows = 0, chunk_rows = 0, hidden = 896, vocab = 151936;
  app.add_option("--model", model);
  app.add_option("--ids", ids_file, "rows of token ids, one row per line");
  app.add_option("--prompt", prompt, "prompt tokens per row (the rest is the response)");
  app.add_option("--threads", threads);
  app.add_option("--temperature", temperature);
  app.add_flag("--entropy", entropy, "also compute the entropy (as the GRPO metric does, no gradient)");
  bool unfused = false;
  app.add_flag("--unfused", unfused, "lm_head_logprobs + backward() (the head's backward recomputes the logits)");
  bool no_grad = false, whole_mlp = false;
  app.add_flag("--no-grad", no_grad, "the forward alone without grad, as the reference model scores (no backward)");
  app.add_flag("--whole-mlp", whole_mlp, "with --no-grad: each MLP over all tokens at once (no chunks)");
  app.add_option("--head-rows", head_rows, "time the lm_head alone on this many random rows (no model; fused unless --unfused)");
  app.add_option("--chunk-rows", chunk_rows, "with --head-rows: rows per chunk (0 = the default budget)");
  app.add_option("--hidden", hidden, "with --head-rows");
  app.add_option("--vocab", vocab, "with --head-rows");
  CLI11_PARSE(app, argc, argv);
  at::set_num_threads(threads);
  if (head_rows > 0) {
    std::cout << bench_head(head_rows, hidden, vocab, chunk_rows, temperature, unfused).dump() << std::endl;
    return 0;
  }
  if (model.empty() || ids_file.empty()) {
    std::cerr << "bench_logprobs: --model and --ids are required (or --head-rows)\n";
    return 2;
  }
  auto lm = rlvr::model::CausalLM::from_pretrained(model, at::kCPU, at::kFloat);
  lm->module().train();
  std::vector<std::vector<int64_t>> prompts, responses;
  std::ifstream in(ids_file);
  for (std::string line; std::getline(in, line);) {
    std::istringstream ss(line);
    std::vector<int64_t> row;
    for (int64_t x; ss >> x;) row.push_back(x);
    if (row.empty()) continue;
    prompts.emplace_back(row.begin(), row.begin() + prompt);
    responses.emplace_back(row.begin() + prompt, row.end());
  }
  std::vector<const std::vector<int64_t>*> pr, rs;
  for (size_t i = 0; i < prompts.size(); ++i) pr.push_back(&prompts[i]), rs.push_back(&responses[i]);
  auto pb = rlvr::trainer::pack_batch(pr, rs, /*pad_id=*/0, at::kCPU);
  const double base = rss_mb();
  reset_peak();
  auto t0 = std::chrono::steady_clock::now();
  if (no_grad) {  // rows of equal length: positions prompt-1 .. T-2 predict the response tokens
    at::NoGradGuard ng;
    rlvr::model::ForwardOptions fo;
    fo.mlp_chunk_rows = whole_mlp ? int64_t{1} << 40 : 0;
    auto h = lm->forward_hidden(pb.tokens, pb.positions, pb.attn_mask, fo);  // [B, T, H]
    const int64_t B = h.size(0), T = h.size(1), R = T - prompt;
    auto hr = h.narrow(1, prompt - 1, R).reshape({B * R, h.size(2)});
    auto target = pb.tokens.narrow(1, prompt, R).reshape({B * R});
    rlvr::model::LmHeadLogprobOptions o;
    o.temperature = temperature;
    auto logp = rlvr::model::lm_head_logprobs(hr, lm->lm_head_weight(), target, o).logp;
    auto t1 = std::chrono::steady_clock::now();
    nlohmann::json j{{"impl", whole_mlp ? "rlvr no-grad, whole MLP" : "rlvr no-grad"}, {"rows", B},
                     {"prompt", prompt}, {"response", R}, {"tokens", B * T}, {"forward_s", seconds(t0, t1)},
                     {"rss_loaded_mb", base}, {"peak_rss_mb", peak_rss_mb()}, {"logp_sum", logp.sum().item<double>()}};
    std::cout << j.dump() << std::endl;
    return 0;
  }
  at::Tensor loss, carrier;
  if (unfused) {
    auto r = rlvr::trainer::response_logprobs(*lm, pb, temperature, entropy, /*grad_entropy=*/false,
                                              /*gradient_checkpointing=*/true);
    loss = (r.logp * pb.resp_mask).sum();
  } else {
    auto r = rlvr::trainer::fused_response_loss(
        *lm, pb, temperature, entropy, /*gradient_checkpointing=*/true,
        [](const at::Tensor&, const at::Tensor& lp, const at::Tensor&) { return ones_grad(lp); });
    carrier = r.carrier;
    loss = (r.logprobs.logp * pb.resp_mask).sum();
  }
  auto t1 = std::chrono::steady_clock::now();
  const double peak_fwd = peak_rss_mb(), rss_fwd = rss_mb();
  (unfused ? loss : carrier).backward();
  auto t2 = std::chrono::steady_clock::now();
  const int64_t B = pb.tokens.size(0), T = pb.tokens.size(1);
  nlohmann::json j{{"impl", unfused ? "rlvr unfused" : "rlvr"}, {"rows", B}, {"prompt", prompt},
                   {"response", T - prompt}, {"tokens", B * T},
                   {"forward_s", seconds(t0, t1)}, {"backward_s", seconds(t1, t2)}, {"total_s", seconds(t0, t2)},
                   {"rss_loaded_mb", base}, {"peak_rss_mb", peak_rss_mb()}, {"logp_sum", loss.item<double>()},
                   {"peak_rss_forward_mb", peak_fwd}, {"rss_after_forward_mb", rss_fwd}, {"rss_end_mb", rss_mb()}};
  std::cout << j.dump() << std::endl;
  return 0;
}
