// Prompt datasets: JSONL files mapped onto Record {id, prompt, reference, solution, extra}. Owns field
// mapping (problem/question/prompt -> prompt; answer/solution -> reference; GSM8K '####' answers) and the
// load report. It does not shuffle or shard (sampler.h), render templates (templates.h) or grade answers.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace rlvr::data {

// One problem. `reference` is the final answer a verifiable reward compares against; `solution` is a
// worked solution (an SFT target) when the source has one; `extra` keeps every other source field
// (for builtin tasks: "task", "difficulty", "split", and for countdown "numbers" and "target").
struct Record {
  std::string id;
  std::string prompt;
  std::string reference;
  std::optional<std::string> solution;
  nlohmann::json extra = nlohmann::json::object();
};

using Dataset = std::vector<Record>;

// How a reference was read from its source text.
enum class ReferenceKind { plain, gsm8k, boxed };

// Which JSON keys feed which Record field. Empty keys mean "the first present of the defaults".
struct FieldMapping {
  std::string prompt_key;              // "" = first of problem, question, prompt
  std::string answer_key;              // "" = first of answer, solution
  std::string solution_key;            // "" = "solution" when it is not the answer source
  std::string id_key = "id";           // missing id -> "<file stem>-<line number>"
};

// What to do with a record whose prompt or reference is missing (absent, null, empty, or not a
// string/number). Malformed JSON is always an Error naming file and line.
enum class OnMissing { skip_warn, error };

struct LoadOptions {
  FieldMapping mapping;
  OnMissing on_missing = OnMissing::skip_warn;
  int64_t limit = 0;                   // stop after this many records; 0 = all
};

struct LoadReport {
  int64_t lines = 0;                   // non-empty lines read
  int64_t loaded = 0;                  // records returned
  int64_t missing_prompt = 0;          // skipped: no usable prompt
  int64_t missing_reference = 0;       // skipped: prompt present, no usable reference
  int64_t gsm8k_parsed = 0;            // references taken from after '####'
  int64_t boxed_parsed = 0;            // references taken from the last \boxed{} of a solution
  std::vector<int64_t> skipped_lines;  // line numbers of skipped records (first 20)
  std::string summary() const;         // one line, for logs
};

// Loads a JSONL file. Throws Error("<file>:<line>: ...") for a line that is not a JSON object, a
// ConfigError for an explicit key (prompt_key / answer_key) that no record has, and, with
// OnMissing::error, an Error naming the first record that lacks a field. With skip_warn (default) the
// skipped records are counted in `report` and one warning is logged.
Dataset load_jsonl(const std::filesystem::path& path, const LoadOptions& options = {},
                   LoadReport* report = nullptr);

// Maps one parsed JSON object (the unit of load_jsonl). Returns nullopt when the prompt or reference
// is missing; `why` (if given) says which. When the reference was parsed out of a worked solution
// ('####' or \boxed), that text is also the record's `solution` (SFT target) unless a separate
// solution field exists.
std::optional<Record> map_record(const nlohmann::json& obj, const FieldMapping& mapping,
                                 const std::string& default_id, std::string* why = nullptr,
                                 ReferenceKind* kind = nullptr);

// A reference answer from answer text: the part after the last '####' (GSM8K) when present, trimmed,
// with thousands separators removed from a plain number ("1,080" -> "1080", "-12,345.5" -> "-12345.5";
// "1,2" is left alone). When `worked_solution` (the text came from a `solution` field because there was
// no answer field) and there is no '####', the content of the last \boxed{...} is taken if present.
// Otherwise the text is only trimmed.
std::string parse_reference(const std::string& text, bool worked_solution = false,
                            ReferenceKind* kind = nullptr);

// The content of the last \boxed{...} (or \fbox{...}) with balanced braces; nullopt if none.
std::optional<std::string> last_boxed(const std::string& text);

// "1,080" -> "1080" when the whole (trimmed) string is a number with groups of three digits.
std::string strip_thousands(const std::string& s);

// Whitespace-normalised text (runs of whitespace -> one space, trimmed): the key for duplicate checks.
std::string normalize_whitespace(const std::string& s);

// One record as a JSON object in the normalised schema {id, prompt, answer, solution?, ...extra}.
nlohmann::json to_json(const Record& r);

}  // namespace rlvr::data
