// Answer extraction from model completions and reference answers: \boxed{} / \fbox{} (last group, with
// adjacent boxes merged), <answer> tags, GSM8K "#### n", "the (final) answer is ...", LaTeX math regions,
// the last number, and multiple-choice letters. Linear-time scans; never throws.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rewards/verifier.h"

namespace rlvr::rewards::detail {

struct Candidate {
  std::string text;
  const char* source;  // "boxed", "answer_tag", "gsm8k", "answer_is", "latex", "whole", "last_number", ...
  bool anchored;       // came from an explicit anchor (boxed, tag, ####, answer is)
};

// Candidates in priority order (the verifier uses the first that parses).
// with_tail=false skips the trailing fallbacks (last region / \frac / number, whole text) for the fast
// path when an anchored answer exists.
std::vector<Candidate> pred_candidates(std::string_view text, const VerifyOptions& opt, bool with_tail = true);

// Content of the last \boxed / \fbox group (adjacent boxes joined with ", "); nullopt if none.
std::optional<std::string> last_boxed(std::string_view text);

// Whether the last \boxed{ / \fbox{ of the text is never closed (a completion cut off inside its final answer).
bool final_box_unclosed(std::string_view text);

// The last number in free text, normalised (thousands separators dropped, decimal commas to points).
std::optional<std::string> last_number(std::string_view text);

// A multiple-choice letter (A-Z) from free text; `gold` relaxes the rules for reference strings.
std::optional<char> extract_letter(std::string_view text, bool gold);

// Whether a reference answer is a bare letter like "C", "(C)" or "\text{C}".
std::optional<char> gold_letter(std::string_view gold);

// "1 000" -> "1000", "1000,99" -> "1000.99", "1,22" -> "1.22", "7,425,000" -> "7425000" for strings
// that are a single plain number; other strings are returned unchanged.
std::string normalize_plain_number(std::string_view s);

}  // namespace rlvr::rewards::detail
