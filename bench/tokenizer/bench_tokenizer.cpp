// bench_tokenizer TOKENIZER_DIR CORPUS.jsonl [threads] [field...]: encodes every string field of every line
// (default fields: problem, solution), single-threaded and with encode_batch, after one warm-up pass that
// fills the word cache; prints one JSON line per mode. bench/tokenizer/run.py runs HF tokenizers alongside.
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "model/tokenizer.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench_tokenizer TOKENIZER_DIR CORPUS.jsonl [threads] [field...]\n");
    return 2;
  }
  const int threads = argc > 3 ? std::atoi(argv[3]) : 0;
  std::vector<std::string> fields;
  for (int i = 4; i < argc; ++i) fields.emplace_back(argv[i]);
  if (fields.empty()) fields = {"problem", "solution"};
  std::vector<std::string> texts;
  size_t bytes = 0;
  rlvr::for_each_line(argv[2], [&](std::string_view line, size_t) {
    auto j = nlohmann::json::parse(line);
    for (const auto& f : fields)
      if (j.contains(f) && j[f].is_string()) {
        texts.push_back(j[f].get<std::string>());
        bytes += texts.back().size();
      }
  });
  using clock = std::chrono::steady_clock;
  auto t0 = clock::now();
  const auto tok = rlvr::model::Tokenizer::from_file(argv[1]);
  const double load_s = std::chrono::duration<double>(clock::now() - t0).count();
  auto run = [&](const char* mode, bool cold, auto&& fn) {
    const auto a = clock::now();
    const size_t n = fn();
    const double s = std::chrono::duration<double>(clock::now() - a).count();
    std::printf("{\"impl\": \"rlvr\", \"mode\": \"%s\", \"cold\": %s, \"texts\": %zu, \"bytes\": %zu, \"tokens\": %zu, "
                "\"seconds\": %.4f, \"tokens_per_s\": %.0f, \"load_s\": %.3f}\n",
                mode, cold ? "true" : "false", texts.size(), bytes, n, s, n / s, load_s);
  };
  auto single = [&] {
    size_t n = 0;
    for (const auto& t : texts) n += tok.encode(t).size();
    return n;
  };
  run("single", true, single);  // cold word cache
  run("single", false, single);
  run("batch", false, [&] {
    size_t n = 0;
    for (const auto& v : tok.encode_batch(texts, false, threads)) n += v.size();
    return n;
  });
  return 0;
}
