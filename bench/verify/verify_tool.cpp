// A LibTorch-free copy of `rlvr verify` (same flags, same output) for benchmarks and quick checks:
//   verify_tool --gold G --pred P | --cases F.jsonl [--threads N]
#include <cstring>
#include <fstream>
#include <iostream>

#include "rewards/cases.h"

int main(int argc, char** argv) {
  std::string gold, pred, cases;
  int threads = 1;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--gold") gold = val();
    else if (a == "--pred") pred = val();
    else if (a == "--cases") cases = val();
    else if (a == "--list-rewards") return rlvr::rewards::list_rewards(std::cout);
    else if (a == "--threads") threads = std::atoi(val().c_str());
    else { std::cerr << "unknown flag " << a << "\n"; return 2; }
  }
  rlvr::rewards::VerifyOptions opt;
  if (!cases.empty()) {
    if (cases == "-") return rlvr::rewards::run_cases(std::cin, std::cout, std::cerr, threads, opt);
    std::ifstream f(cases);
    if (!f) { std::cerr << "cannot open " << cases << "\n"; return 2; }
    return rlvr::rewards::run_cases(f, std::cout, std::cerr, threads, opt);
  }
  return rlvr::rewards::run_pair(gold, pred, std::cout, opt);
}
