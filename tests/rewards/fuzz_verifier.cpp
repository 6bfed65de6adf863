// libFuzzer target over extraction, parsing and comparison: the input is split at the first NUL (or in
// half) into a completion and a gold answer; verify(), extract_answer(), extract_gold() and
// answers_equivalent() must return (no crash, no hang, no escaping exception) on any bytes.
// Built and run by scripts/fuzz_verifier.sh (clang -fsanitize=fuzzer,address,undefined).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "rewards/verifier.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view all(reinterpret_cast<const char*>(data), size);
  size_t cut = all.find('\0');
  if (cut == std::string_view::npos) cut = size / 2;
  std::string_view completion = all.substr(0, cut);
  std::string_view gold = cut < size ? all.substr(cut + 1) : std::string_view{};
  rlvr::rewards::VerifyOptions opt;
  auto r = rlvr::rewards::verify(completion, gold, opt);
  (void)r;
  auto e = rlvr::rewards::extract_answer(completion, opt);
  (void)e;
  auto g = rlvr::rewards::extract_gold(gold, opt);
  (void)g;
  (void)rlvr::rewards::answers_equivalent(completion, gold, opt);
  opt.latex = false;
  opt.letters = 1;
  (void)rlvr::rewards::verify(gold, completion, opt);
  return 0;
}
