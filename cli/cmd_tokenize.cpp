// `rlvr tokenize --tokenizer DIR --input F.jsonl [--output F.jsonl] [--add-special-tokens]`: JSONL lines
// {"text": "..."} -> {"ids": [...]} in the same order (stdout by default). The text is encoded as it is: no
// chat template, and no BOS unless --add-special-tokens asks for the file's post-processor.
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "model/tokenizer.h"

namespace rlvr::cli {

namespace {

struct TokenizeOpts {
  std::string tokenizer;  // tokenizer.json or a directory holding it
  std::string input;      // JSONL with a "text" string per line
  std::string output;     // "" or "-": stdout
  bool add_special_tokens = false;
  int threads = 0;        // 0: all cores
};

// Encodes a block of lines at a time so encode_batch can use every core while output order is kept.
int run_tokenize(const TokenizeOpts& o) {
  const auto tok = model::Tokenizer::from_file(o.tokenizer);
  std::ofstream file;
  std::ostream* out = &std::cout;
  if (!o.output.empty() && o.output != "-") {
    file.open(o.output, std::ios::binary | std::ios::trunc);
    RLVR_CHECK(file.good(), "cannot open '{}' for writing", o.output);
    out = &file;
  }
  constexpr size_t kBlock = 4096;
  std::vector<std::string> texts;
  size_t n_lines = 0, n_tokens = 0;
  auto flush = [&] {
    const auto ids = tok.encode_batch(texts, o.add_special_tokens, o.threads);
    std::string buf;
    for (const auto& v : ids) {
      buf += "{\"ids\": [";
      for (size_t i = 0; i < v.size(); ++i) {
        if (i) buf += ", ";
        buf += std::to_string(v[i]);
      }
      buf += "]}\n";
      n_tokens += v.size();
    }
    out->write(buf.data(), static_cast<std::streamsize>(buf.size()));
    texts.clear();
  };
  for_each_line(o.input, [&](std::string_view line, size_t lineno) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw Error(fmt::format("{}:{}: not valid JSON: {}", o.input, lineno, e.what()));
    }
    RLVR_CHECK(j.is_object() && j.contains("text") && j["text"].is_string(),
               "{}:{}: expected an object with a string field \"text\"", o.input, lineno);
    texts.push_back(j["text"].get<std::string>());
    ++n_lines;
    if (texts.size() >= kBlock) flush();
  });
  flush();
  out->flush();
  RLVR_CHECK(out->good(), "writing the output failed (disk full?)");
  log::info("tokenize: {} lines, {} tokens", n_lines, n_tokens);
  return 0;
}

}  // namespace

void add_tokenize(CLI::App& app, Action& run) {
  auto o = std::make_shared<TokenizeOpts>();
  auto* sub = app.add_subcommand("tokenize", "tokenize JSONL texts ({\"text\"} -> {\"ids\"})");
  sub->add_option("--tokenizer,-t", o->tokenizer, "tokenizer.json or a directory holding it")->required();
  sub->add_option("--input,-i", o->input, "input JSONL, one {\"text\": ...} per line")->required();
  sub->add_option("--output,-o", o->output, "output JSONL (default: stdout)");
  sub->add_flag("--add-special-tokens", o->add_special_tokens,
                "apply the tokenizer's post-processor (e.g. a BOS); off by default");
  sub->add_option("--threads", o->threads, "encoding threads (0: all cores)");
  sub->callback([&run, o] { run = [o] { return run_tokenize(*o); }; });
}

}  // namespace rlvr::cli
