// bench_logprobs: forward + backward of response log-probs on CPU through trainer::response_logprobs (the
// trainer's path: forward_hidden, then lm_head_logprobs at response positions), gradient checkpointing on.
// Reads the token ids that bench/logprobs/trl_logprobs.py scores; prints one JSON line (times, peak RSS, the
// log-prob sum). One configuration per process; the peak is reset after loading, so it is the step's.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "model/causal_lm.h"
#include "trainer/batch.h"

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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"response log-probs forward + backward: time and peak memory"};
  std::string model, ids_file;
  int prompt = 256, threads = 2;
  double temperature = 1.0;
  bool entropy = false;
  app.add_option("--model", model)->required();
  app.add_option("--ids", ids_file, "rows of token ids, one row per line")->required();
  app.add_option("--prompt", prompt, "prompt tokens per row (the rest is the response)");
  app.add_option("--threads", threads);
  app.add_option("--temperature", temperature);
  app.add_flag("--entropy", entropy, "also compute the entropy (as the GRPO metric does, no gradient)");
  CLI11_PARSE(app, argc, argv);
  at::set_num_threads(threads);
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
  auto r = rlvr::trainer::response_logprobs(*lm, pb, temperature, entropy, /*grad_entropy=*/false,
                                            /*gradient_checkpointing=*/true);
  auto loss = (r.logp * pb.resp_mask).sum();
  auto t1 = std::chrono::steady_clock::now();
  loss.backward();
  auto t2 = std::chrono::steady_clock::now();
  auto sec = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
  const int64_t B = pb.tokens.size(0), T = pb.tokens.size(1);
  nlohmann::json j{{"impl", "rlvr"}, {"rows", B}, {"prompt", prompt}, {"response", T - prompt}, {"tokens", B * T},
                   {"forward_s", sec(t0, t1)}, {"backward_s", sec(t1, t2)}, {"total_s", sec(t0, t2)},
                   {"rss_loaded_mb", base}, {"peak_rss_mb", peak_rss_mb()}, {"logp_sum", loss.item<double>()}};
  std::cout << j.dump() << std::endl;
  return 0;
}
