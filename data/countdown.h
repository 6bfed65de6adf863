// The countdown task's exact checker and bounded solver: reach a target with given numbers, each used at
// most once, with + - * / and parentheses. The checker evaluates in exact rationals and never hangs on
// hostile text (bounded length, nesting and literal count). Problem generation is in tasks.h.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "data/rational.h"

namespace rlvr::data {

enum class CountdownStatus {
  correct,      // evaluates exactly to the target, numbers a sub-multiset of the given ones
  wrong_value,  // well formed, legal numbers, another value
  bad_numbers,  // uses a number not given, or more often than given
  invalid,      // not an expression: syntax error, too long/deep, division by zero, overflow
};
const char* to_string(CountdownStatus s);

struct CountdownVerdict {
  CountdownStatus status = CountdownStatus::invalid;
  std::optional<Rational> value;  // the exact value when the expression evaluated
  std::string message;            // why, for logs ("uses 9, which is not among [3, 7, 8]")
  bool correct() const { return status == CountdownStatus::correct; }
};

// Bounds that make the check O(length) and safe on any input.
struct CountdownLimits {
  size_t max_chars = 256;   // longer text is invalid
  int max_depth = 32;       // parenthesis nesting
  int max_literals = 32;    // numbers in the expression
};

// Checks `expression` (e.g. "(8-3)*7-6") against `numbers` and `target`. Accepted syntax: non-negative
// integer literals, + - * /, parentheses, spaces; also \times, \cdot, \div, ×, ÷, − (Unicode minus) and
// \left( \right). No unary minus (numbers are used as given). One optional trailing "= <integer>" is
// allowed and ignored (only the left side is graded). Intermediate values may be any rational.
CountdownVerdict check_countdown(std::string_view expression, const std::vector<int64_t>& numbers, int64_t target,
                                 const CountdownLimits& limits = {});

// A solution: the expression with minimal parentheses and its steps ("8-3=5", "5*7=35", ...).
struct CountdownSolution {
  std::string expression;
  std::vector<std::string> steps;
};

// Depth-first search with iterative deepening on the number of operations (so it returns a solution
// with the fewest numbers), over positive-integer intermediates (classic countdown rules; the checker
// is more permissive). Gives up after `node_budget` combinations: nullopt then means "not found", not
// "impossible".
std::optional<CountdownSolution> solve_countdown(const std::vector<int64_t>& numbers, int64_t target,
                                                 int64_t node_budget = 200000);

}  // namespace rlvr::data
