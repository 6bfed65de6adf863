// Dataset checks and filtering (see data_check.h).
#include "data/data_check.h"

#include <fmt/format.h>

#include <unordered_map>

#include "common/error.h"
#include "common/fs.h"

namespace rlvr::data {

int64_t utf8_length(const std::string& s) {
  int64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

CheckReport check_dataset(const std::filesystem::path& path, const CheckOptions& o) {
  RLVR_CHECK(std::filesystem::exists(path), "dataset '{}' does not exist", path.string());
  CheckReport rep;
  rep.file = path.string();
  const bool tokens = static_cast<bool>(o.count_tokens);
  rep.length_unit = tokens ? "tokens" : "chars";
  rep.length_limit = std::max<int64_t>(0, tokens ? o.max_prompt_tokens : o.max_prompt_chars);
  if (o.reference_gradable) rep.gradable = 0;
  std::unordered_map<std::string, size_t> first_line;  // normalised prompt -> line
  std::unordered_map<std::string, int> shown;           // examples per kind
  std::string kept;
  int64_t kept_count = 0;
  int64_t length_sum = 0;
  auto example = [&](const std::string& kind, size_t line, const std::string& what) {
    if (shown[kind]++ < o.max_examples) rep.examples.push_back(fmt::format("line {}: {}", line, what));
  };
  std::string stem = path.stem().string();
  for_each_line(path, [&](std::string_view line, size_t n) {
    ++rep.lines;
    nlohmann::json obj;
    try {
      obj = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      ++rep.invalid_json;
      example("json", n, fmt::format("invalid JSON ({})", e.what()));
      return;
    }
    if (!obj.is_object()) {
      ++rep.invalid_json;
      example("json", n, fmt::format("not a JSON object ({})", obj.type_name()));
      return;
    }
    std::string why;
    auto rec = map_record(obj, o.mapping, fmt::format("{}-{}", stem, n), &why);
    if (!rec) {
      (why.rfind("no prompt", 0) == 0 ? rep.missing_prompt : rep.missing_reference)++;
      example("missing", n, why);
      return;
    }
    ++rep.records;
    bool keep = true;
    if (o.reference_gradable) {
      if (o.reference_gradable(rec->reference)) {
        ++rep.gradable;
      } else {
        keep = false;
        example("gradable", n, fmt::format("reference the verifier cannot parse: '{}'", rec->reference.substr(0, 80)));
      }
    }
    auto [it, fresh] = first_line.emplace(normalize_whitespace(rec->prompt), n);
    if (!fresh) {
      ++rep.duplicates;
      keep = false;
      example("dup", n, fmt::format("duplicate prompt of line {}", it->second));
    }
    int64_t len = tokens ? o.count_tokens(*rec) : utf8_length(rec->prompt);
    length_sum += len;
    rep.max_prompt_length = std::max(rep.max_prompt_length, len);
    if (rep.length_limit > 0 && len > rep.length_limit) {
      ++rep.over_long;
      keep = false;
      example("long", n, fmt::format("prompt of {} {} > {}", len, rep.length_unit, rep.length_limit));
    }
    if (keep && !o.output.empty()) {
      kept.append(line);
      kept.push_back('\n');
      ++kept_count;
    }
  });
  if (rep.records > 0) rep.mean_prompt_length = static_cast<double>(length_sum) / static_cast<double>(rep.records);
  if (!o.output.empty()) {
    rep.written = kept_count;
    write_file_atomic(o.output, kept);
  }
  return rep;
}

std::string CheckReport::text() const {
  std::string s = fmt::format("{}\n", file);
  s += fmt::format("  lines              {}\n", lines);
  s += fmt::format("  invalid JSON       {}\n", invalid_json);
  s += fmt::format("  missing prompt     {}\n", missing_prompt);
  s += fmt::format("  missing reference  {}\n", missing_reference);
  s += fmt::format("  records            {}\n", records);
  if (gradable >= 0)
    s += fmt::format("  gradable reference {} ({} not parsed by the verifier)\n", gradable, records - gradable);
  else
    s += "  gradable reference not checked\n";
  s += fmt::format("  duplicate prompts  {}\n", duplicates);
  s += fmt::format("  prompt length      mean {:.1f}, max {} {}\n", mean_prompt_length, max_prompt_length, length_unit);
  if (length_limit > 0)
    s += fmt::format("  over-long prompts  {} (> {} {})\n", over_long, length_limit, length_unit);
  else
    s += "  over-long prompts  not checked\n";
  if (written >= 0) s += fmt::format("  written            {} records\n", written);
  for (const auto& e : examples) s += "  " + e + "\n";
  return s;
}

nlohmann::json CheckReport::to_json() const {
  return {{"file", file},
          {"lines", lines},
          {"invalid_json", invalid_json},
          {"missing_prompt", missing_prompt},
          {"missing_reference", missing_reference},
          {"records", records},
          {"gradable", gradable},
          {"duplicates", duplicates},
          {"over_long", over_long},
          {"length_unit", length_unit},
          {"length_limit", length_limit},
          {"max_prompt_length", max_prompt_length},
          {"mean_prompt_length", mean_prompt_length},
          {"written", written},
          {"examples", examples}};
}

}  // namespace rlvr::data
