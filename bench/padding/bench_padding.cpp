// Padding of the update's micro-batches on a GSM8K-length distribution: count-based micro-batches (in group
// order, as train.micro_batch_size makes them) against token-budget ones (train.max_tokens_per_micro_batch),
// through the planner the trainer uses (trainer/micro_batches.h). Prompts are GSM8K problems, each completion's
// length is the length of a GSM8K worked solution drawn at random (tokens of a real tokenizer). Prints a table.
//   bench_padding TOKENIZER.json GSM8K.jsonl [prompts_per_step=64] [group=8] [steps=50] [micro=16] [budgets...]
#include <algorithm>
#include <numeric>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "model/tokenizer.h"
#include "trainer/micro_batches.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s TOKENIZER.json GSM8K.jsonl [prompts=64] [group=8] [steps=50] [micro=16] [budgets...]\n",
                 argv[0]);
    return 2;
  }
  const auto tok = rlvr::model::Tokenizer::from_file(argv[1]);
  const int prompts = argc > 3 ? std::atoi(argv[3]) : 64, group = argc > 4 ? std::atoi(argv[4]) : 8;
  const int steps = argc > 5 ? std::atoi(argv[5]) : 50, micro = argc > 6 ? std::atoi(argv[6]) : 16;
  std::vector<int64_t> budgets;
  for (int i = 7; i < argc; ++i) budgets.push_back(std::atoll(argv[i]));
  if (budgets.empty()) budgets = {2048, 4096, 8192};
  std::vector<int64_t> plen, rlen;
  rlvr::for_each_line(argv[2], [&](std::string_view line, size_t) {
    auto j = nlohmann::json::parse(line);
    plen.push_back(static_cast<int64_t>(tok.encode(j.value("problem", "")).size()));
    rlen.push_back(static_cast<int64_t>(tok.encode(j.value("solution", "")).size()));
  });
  std::mt19937_64 rng(1234);
  std::uniform_int_distribution<size_t> pick(0, plen.size() - 1);
  struct Acc { double padded = 0, real = 0, mbs = 0, largest = 0; };
  std::vector<Acc> acc(budgets.size() + 1);
  for (int s = 0; s < steps; ++s) {
    std::vector<int64_t> len;
    for (int p = 0; p < prompts; ++p) {
      int64_t pl = plen[pick(rng)];
      for (int g = 0; g < group; ++g) len.push_back(pl + rlen[pick(rng)]);
    }
    std::vector<size_t> rows(len.size());
    for (size_t i = 0; i < rows.size(); ++i) rows[i] = i;
    for (size_t b = 0; b <= budgets.size(); ++b) {
      auto plan = rlvr::trainer::plan_micro_batches(len, rows, micro, b == 0 ? 0 : budgets[b - 1]);
      auto c = rlvr::trainer::count_padding(len, plan);
      acc[b].padded += c.padded, acc[b].real += c.real, acc[b].mbs += static_cast<double>(plan.size());
      for (const auto& mb : plan) {
        int64_t longest = 0;
        for (size_t i : mb) longest = std::max(longest, len[i]);
        acc[b].largest = std::max(acc[b].largest, static_cast<double>(longest * static_cast<int64_t>(mb.size())));
      }
    }
  }
  std::printf("%zu GSM8K records; %d steps of %d prompts x G=%d; mean prompt %.1f, mean completion %.1f tokens\n",
              plen.size(), steps, prompts, group,
              static_cast<double>(std::accumulate(plen.begin(), plen.end(), int64_t{0})) / plen.size(),
              static_cast<double>(std::accumulate(rlen.begin(), rlen.end(), int64_t{0})) / rlen.size());
  std::printf("| micro-batches | padded / real tokens - 1 | micro-batches per step | largest micro-batch (padded tokens) |\n");
  std::printf("|---|---:|---:|---:|\n");
  for (size_t b = 0; b <= budgets.size(); ++b) {
    std::string name = b == 0 ? "micro_batch_size " + std::to_string(micro) + " (in group order)"
                              : "max_tokens_per_micro_batch " + std::to_string(budgets[b - 1]);
    std::printf("| %s | %.3f | %.1f | %.0f |\n", name.c_str(), acc[b].padded / acc[b].real - 1.0, acc[b].mbs / steps,
                acc[b].largest);
  }
  return 0;
}
