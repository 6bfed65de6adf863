// Rule-based math answer verifier: answer extraction from model completions, a bounded LaTeX / plain-math
// parser, and equivalence (exact rationals, numeric at random points, GiNaC symbolic fallback, sets,
// intervals, matrices, relations, text, multiple-choice letters). Every entry point is noexcept in effect:
// nothing escapes on any input, and a check that reaches a cap returns Verdict::ungradable.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rlvr::rewards {

enum class Verdict { correct, wrong, ungradable };
const char* verdict_name(Verdict v);

// Where the answer is looked for in a completion, in priority order when `auto_order` is on.
struct VerifyOptions {
  // Extraction targets (a completion is searched for each enabled target).
  bool latex = true;          // \boxed{..}/\fbox{..}, "final answer is $..$", $..$ / \(..\) / \[..\] regions
  bool expr = true;           // plain expressions: "#### n", "the answer is n", the last number in the text
  int letters = -1;           // multiple-choice letters: 1 on, 0 off, -1 auto (on when the gold is a letter)
  bool answer_tag = true;     // <answer>...</answer>
  bool boxed = true;          // false: \boxed is not an extraction target (Math-Verify boxed_match_priority=-1)
  bool boxed_first = true;    // false: "final answer is X" wins over \boxed (Math-Verify priority > 50)
  bool last_bracket = false;  // AReaL geometry: the last [...] group, else the last number
  bool malformed_operators = true;  // accept \frac12, \sqrt3
  // Strict mode: extraction needs an anchor (\boxed, <answer>, ####, "answer is", a $..$ region);
  // lenient (false) also accepts the last number / the whole completion when it parses.
  bool strict_extraction = false;
  // Comparison.
  int float_rounding = 6;     // a decimal literal on either side: equal when both round equal at this many places
  double rel_tol = 1e-9;      // exact-looking values: relative tolerance for numeric evaluation
  bool strict = true;         // false: f(x) ~ f(y) (free symbols may be renamed), like Math-Verify strict=False
  bool allow_set_relation = true;  // x \in [a,b] ~ a <= x <= b
  bool percent_flexible = true;    // 28\% ~ 28 and ~ 0.28
  bool ordered_lists = false;      // bare lists "1, 2" compare in order (hendrycks-style)
  // Caps (reaching one makes the check ungradable).
  size_t max_completion_chars = 1 << 20;  // longer completions: only the tail is scanned
  size_t scan_tail_chars = 16384;        // how much of a long completion's tail is searched
  size_t max_answer_chars = 2000;        // an extracted answer (or gold) longer than this: ungradable
  int max_depth = 64;                    // nesting depth in the parser
  int max_nodes = 4000;                  // expression nodes per answer
  int max_exponent = 4096;               // |exponent| allowed in exact integer powers
  int64_t max_work = 200000;             // numeric evaluation steps per check

  bool operator==(const VerifyOptions&) const = default;
};

struct VerifyResult {
  Verdict verdict = Verdict::ungradable;
  std::string pred_extracted;   // what was taken from the completion ("" when nothing)
  std::string gold_extracted;   // the gold answer as compared
  std::string reason;           // why ungradable / which rule decided (for logs)
};

// Verifies a model completion against a reference answer. Never throws.
VerifyResult verify(std::string_view completion, std::string_view gold, const VerifyOptions& opt = {});

// The answer a completion commits to, or nullopt when nothing can be extracted. Never throws.
std::optional<std::string> extract_answer(std::string_view completion, const VerifyOptions& opt = {});

// The answer as it is compared when `gold` is a reference answer (boxed content, $..$ stripped, ...).
std::string extract_gold(std::string_view gold, const VerifyOptions& opt = {});

// Equivalence of two already-extracted answers (both sides parsed as answers; for majority voting).
// false when either side cannot be parsed or a cap is reached. Never throws.
bool answers_equivalent(std::string_view a, std::string_view b, const VerifyOptions& opt = {});

// Lower-level: compare two extracted answers, with the three-way outcome (ungradable when `gold` does not
// parse or a cap is reached).
Verdict compare_answers(std::string_view pred, std::string_view gold, const VerifyOptions& opt,
                        std::string* reason = nullptr);

}  // namespace rlvr::rewards
