// Verifier throughput: reads JSON Lines {gold, pred}, runs rewards::verify on every pair `repeat` times on
// one thread, prints {"file", "checks", "seconds", "checks_per_sec", "correct"} and optionally writes the
// verdicts (true/false per line) for agreement with Math-Verify. Used by bench/verify/run.sh.
//   bench_verify FILE [--repeat N] [--verdicts OUT]
#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "rewards/verifier.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: bench_verify FILE [--repeat N] [--verdicts OUT]\n";
    return 2;
  }
  std::string file = argv[1], verdicts;
  int repeat = 5;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--repeat") repeat = std::atoi(argv[i + 1]);
    else if (a == "--verdicts") verdicts = argv[i + 1];
  }
  std::vector<std::pair<std::string, std::string>> rows;
  std::ifstream f(file);
  std::string line;
  while (std::getline(f, line)) {
    auto j = nlohmann::json::parse(line);
    rows.emplace_back(j["gold"].get<std::string>(), j["pred"].get<std::string>());
  }
  std::vector<bool> out(rows.size());
  size_t correct = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (int r = 0; r < repeat; ++r) {
    correct = 0;
    for (size_t i = 0; i < rows.size(); ++i) {
      auto v = rlvr::rewards::verify(rows[i].second, rows[i].first);
      out[i] = v.verdict == rlvr::rewards::Verdict::correct;
      correct += out[i];
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  size_t checks = rows.size() * size_t(repeat);
  nlohmann::json o{{"file", file}, {"checks", checks}, {"seconds", secs}, {"checks_per_sec", checks / secs},
                   {"correct", correct}};
  std::cout << o.dump() << "\n";
  if (!verdicts.empty()) {
    std::ofstream v(verdicts);
    for (bool b : out) v << (b ? "true" : "false") << "\n";
  }
  return 0;
}
