// JSONL loading and field mapping (see dataset.h).
#include "data/dataset.h"

#include <fmt/format.h>

#include <cstring>

#include "common/error.h"
#include "common/json_exact.h"
#include "common/fs.h"
#include "common/log.h"

namespace rlvr::data {
namespace {

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n\f\v");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n\f\v");
  return s.substr(b, e - b + 1);
}

// A string field, or a number written as text (some sources store answers as numbers); nullopt for
// absent, null, empty, or structured values.
std::optional<std::string> text_field(const nlohmann::json& obj, const std::string& key) {
  auto it = obj.find(key);
  if (it == obj.end()) return std::nullopt;
  std::string s;
  if (it->is_string()) {
    s = it->get<std::string>();
  } else if (it->is_number_integer()) {
    s = it->dump();
  } else if (it->is_number_float()) {
    double d = it->get<double>();
    // 27.0 -> "27": integral floats are how some sources store integer answers.
    if (d == static_cast<double>(static_cast<int64_t>(d)) && d > -9e15 && d < 9e15)
      s = std::to_string(static_cast<int64_t>(d));
    else
      s = it->dump();
  } else {
    return std::nullopt;
  }
  if (trim(s).empty()) return std::nullopt;
  return s;
}

const char* const kPromptKeys[] = {"problem", "question", "prompt"};
const char* const kAnswerKeys[] = {"answer", "solution"};

}  // namespace

std::string LoadReport::summary() const {
  return fmt::format("{} lines, {} records, {} skipped (missing prompt {}, missing reference {}), "
                     "{} GSM8K '####' and {} \\boxed answers parsed",
                     lines, loaded, missing_prompt + missing_reference, missing_prompt, missing_reference,
                     gsm8k_parsed, boxed_parsed);
}

std::string normalize_whitespace(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  bool space = false;
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      space = !out.empty();
    } else {
      if (space) out.push_back(' ');
      space = false;
      out.push_back(c);
    }
  }
  return out;
}

std::string strip_thousands(const std::string& text) {
  std::string s = trim(text);
  // Grammar: -? d{1,3} (, ddd)+ (. d+)?
  size_t i = 0;
  if (i < s.size() && s[i] == '-') ++i;
  size_t lead = 0;
  while (i < s.size() && isdigit(static_cast<unsigned char>(s[i]))) ++i, ++lead;
  if (lead < 1 || lead > 3) return s;
  int groups = 0;
  while (i < s.size() && s[i] == ',') {
    size_t j = i + 1, n = 0;
    while (j < s.size() && isdigit(static_cast<unsigned char>(s[j]))) ++j, ++n;
    if (n != 3) return s;
    i = j;
    ++groups;
  }
  if (groups == 0) return s;
  if (i < s.size() && s[i] == '.') {
    size_t j = i + 1;
    while (j < s.size() && isdigit(static_cast<unsigned char>(s[j]))) ++j;
    if (j == i + 1) return s;
    i = j;
  }
  if (i != s.size()) return s;
  std::string out;
  for (char c : s)
    if (c != ',') out.push_back(c);
  return out;
}

std::optional<std::string> last_boxed(const std::string& text) {
  size_t best = std::string::npos, best_len = 0;
  for (const char* tag : {"\\boxed{", "\\fbox{"}) {
    size_t p = text.rfind(tag);
    if (p != std::string::npos && (best == std::string::npos || p > best)) best = p, best_len = strlen(tag);
  }
  if (best == std::string::npos) return std::nullopt;
  size_t start = best + best_len;
  int depth = 1;
  for (size_t i = start; i < text.size(); ++i) {
    if (text[i] == '{') ++depth;
    if (text[i] == '}' && --depth == 0) return text.substr(start, i - start);
  }
  return std::nullopt;  // unbalanced
}

std::string parse_reference(const std::string& text, bool worked_solution, ReferenceKind* kind) {
  if (kind) *kind = ReferenceKind::plain;
  size_t pos = text.rfind("####");
  if (pos != std::string::npos) {
    if (kind) *kind = ReferenceKind::gsm8k;
    return strip_thousands(text.substr(pos + 4));
  }
  if (worked_solution) {
    if (auto b = last_boxed(text)) {
      if (kind) *kind = ReferenceKind::boxed;
      return trim(*b);
    }
  }
  return trim(text);
}

std::optional<Record> map_record(const nlohmann::json& obj, const FieldMapping& m, const std::string& default_id,
                                 std::string* why, ReferenceKind* kind_out) {
  if (kind_out) *kind_out = ReferenceKind::plain;
  if (!obj.is_object()) {
    if (why) *why = "not a JSON object";
    return std::nullopt;
  }
  Record r;
  std::string prompt_key = m.prompt_key;
  if (prompt_key.empty()) {
    for (const char* k : kPromptKeys)
      if (text_field(obj, k)) {
        prompt_key = k;
        break;
      }
  }
  auto prompt = prompt_key.empty() ? std::nullopt : text_field(obj, prompt_key);
  if (!prompt) {
    if (why)
      *why = m.prompt_key.empty() ? "no prompt (none of problem, question, prompt)"
                                  : fmt::format("no prompt (key '{}')", m.prompt_key);
    return std::nullopt;
  }
  std::string answer_key = m.answer_key;
  if (answer_key.empty()) {
    for (const char* k : kAnswerKeys)
      if (text_field(obj, k)) {
        answer_key = k;
        break;
      }
  }
  auto answer = answer_key.empty() ? std::nullopt : text_field(obj, answer_key);
  if (!answer) {
    if (why)
      *why = m.answer_key.empty() ? "no reference (none of answer, solution)"
                                  : fmt::format("no reference (key '{}')", m.answer_key);
    return std::nullopt;
  }
  ReferenceKind kind = ReferenceKind::plain;
  std::string solution_key = m.solution_key.empty() ? std::string("solution") : m.solution_key;
  r.reference = parse_reference(*answer, answer_key == solution_key, &kind);
  if (r.reference.empty()) {
    if (why) *why = fmt::format("no reference (empty after parsing '{}')", answer_key);
    return std::nullopt;
  }
  if (kind_out) *kind_out = kind;
  r.prompt = *prompt;

  if (solution_key != answer_key)
    if (auto s = text_field(obj, solution_key)) r.solution = *s;
  // A reference parsed out of a worked solution (raw GSM8K `answer`, a MATH `solution`): that text is
  // also the SFT target unless the record has a separate solution field.
  if (!r.solution && kind != ReferenceKind::plain) r.solution = *answer;
  auto id = m.id_key.empty() ? std::nullopt : text_field(obj, m.id_key);
  r.id = id ? *id : default_id;

  for (auto it = obj.begin(); it != obj.end(); ++it) {
    const std::string& k = it.key();
    if (k == prompt_key || k == answer_key || k == m.id_key || k == solution_key) continue;
    r.extra[k] = it.value();
  }
  return r;
}

Dataset load_jsonl(const std::filesystem::path& path, const LoadOptions& options, LoadReport* report_out) {
  LoadReport report;
  Dataset out;
  std::string stem = path.stem().string();
  std::string first_keys;
  RLVR_CHECK(std::filesystem::exists(path), "dataset '{}' does not exist", path.string());
  for_each_line(path, [&](std::string_view line, size_t n) {
    if (options.limit > 0 && static_cast<int64_t>(out.size()) >= options.limit) return;
    ++report.lines;
    nlohmann::json obj;
    try {
      obj = parse_json_exact(line);  // an integer answer beyond 64 bits keeps its digits
    } catch (const nlohmann::json::parse_error& e) {
      throw Error(fmt::format("{}:{}: invalid JSON: {}", path.string(), n, e.what()));
    }
    if (!obj.is_object())
      throw Error(fmt::format("{}:{}: expected a JSON object, got {}", path.string(), n, obj.type_name()));
    if (first_keys.empty()) {
      for (auto it = obj.begin(); it != obj.end(); ++it) first_keys += (first_keys.empty() ? "" : ", ") + it.key();
    }
    std::string why;
    ReferenceKind kind = ReferenceKind::plain;
    auto rec = map_record(obj, options.mapping, fmt::format("{}-{}", stem, n), &why, &kind);
    if (!rec) {
      if (options.on_missing == OnMissing::error)
        throw Error(fmt::format("{}:{}: {}", path.string(), n, why));
      if (why.rfind("no prompt", 0) == 0)
        ++report.missing_prompt;
      else
        ++report.missing_reference;
      if (report.skipped_lines.size() < 20) report.skipped_lines.push_back(static_cast<int64_t>(n));
      return;
    }
    report.gsm8k_parsed += kind == ReferenceKind::gsm8k;
    report.boxed_parsed += kind == ReferenceKind::boxed;
    out.push_back(std::move(*rec));
  });
  report.loaded = static_cast<int64_t>(out.size());
  if (report.loaded == 0 && report.lines > 0) {
    throw ConfigError(fmt::format(
        "{}: no usable record in {} lines (prompt_key '{}', answer_key '{}'; keys of the first record: [{}])",
        path.string(), report.lines, options.mapping.prompt_key.empty() ? "auto" : options.mapping.prompt_key,
        options.mapping.answer_key.empty() ? "auto" : options.mapping.answer_key, first_keys));
  }
  if (report.missing_prompt + report.missing_reference > 0) {
    std::string lines;
    for (auto l : report.skipped_lines) lines += (lines.empty() ? "" : ", ") + std::to_string(l);
    log::warn("{}: skipped {} records without prompt or reference (lines {}{})", path.string(),
              report.missing_prompt + report.missing_reference, lines,
              report.missing_prompt + report.missing_reference > 20 ? ", ..." : "");
  }
  if (report_out) *report_out = report;
  return out;
}

nlohmann::json to_json(const Record& r) {
  nlohmann::json j = nlohmann::json::object();
  j["id"] = r.id;
  j["prompt"] = r.prompt;
  j["answer"] = r.reference;
  if (r.solution) j["solution"] = *r.solution;
  for (auto it = r.extra.begin(); it != r.extra.end(); ++it)
    if (!j.contains(it.key())) j[it.key()] = it.value();
  return j;
}

}  // namespace rlvr::data
