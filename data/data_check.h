// `rlvr data check`: a report on a JSONL dataset before training on it (usable records, references the
// verifier can grade, duplicate prompts, over-long prompts) and an optional filtered copy. The verifier
// and the tokenizer come in as callbacks (they live in rewards/ and model/).
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace rlvr::data {

struct CheckOptions {
  FieldMapping mapping;                  // as data.prompt_key / data.answer_key
  // Prompt length: in tokens when count_tokens is set (limit max_prompt_tokens), else in characters
  // (Unicode code points; limit max_prompt_chars). A limit <= 0 disables the check.
  std::function<int64_t(const Record&)> count_tokens;
  int64_t max_prompt_tokens = 0;
  int64_t max_prompt_chars = 0;
  // Whether the verifier can parse a reference answer; empty = not checked.
  std::function<bool(const std::string& reference)> reference_gradable;
  // Filtered output (original lines, verbatim, of usable, gradable, first-occurrence, short-enough
  // records), written atomically; empty = none.
  std::filesystem::path output;
  int max_examples = 5;                  // example lines kept per issue kind
};

struct CheckReport {
  std::string file;
  int64_t lines = 0;                     // non-empty lines
  int64_t invalid_json = 0;              // lines that are not a JSON object
  int64_t missing_prompt = 0;
  int64_t missing_reference = 0;
  int64_t records = 0;                   // lines with a prompt and a reference
  int64_t gradable = -1;                 // references the verifier parses; -1 = not checked
  int64_t duplicates = 0;                // records whose whitespace-normalised prompt appeared earlier
  int64_t over_long = 0;                 // prompts over the limit
  std::string length_unit = "chars";     // "chars" | "tokens"
  int64_t length_limit = 0;              // 0 = not checked
  int64_t max_prompt_length = 0;
  double mean_prompt_length = 0;
  int64_t written = -1;                  // records in the filtered file; -1 = none written
  std::vector<std::string> examples;     // "line 12: duplicate of line 3", ...
  std::string text() const;              // human-readable, several lines
  nlohmann::json to_json() const;
};

// Reads `path` line by line; malformed lines are counted and reported, not thrown. Throws only when the
// file cannot be read or the output cannot be written.
CheckReport check_dataset(const std::filesystem::path& path, const CheckOptions& options);

// Unicode code points in UTF-8 text (bytes that are not continuation bytes).
int64_t utf8_length(const std::string& s);

}  // namespace rlvr::data
