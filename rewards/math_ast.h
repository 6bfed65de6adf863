// The expression tree the verifier compares: a bounded recursive-descent parser for LaTeX and plain math
// (math_parse.cpp), exact rational and numeric evaluation plus a GiNaC symbolic check (math_eval.cpp).
// Internal to rewards/; the public API is rewards/verifier.h.
#pragma once
#include <complex>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rewards/verifier.h"

namespace rlvr::rewards::detail {

enum class K : uint8_t {
  Num,      // s: canonical decimal literal ("12", "0.5"); dec: written with a decimal point
  Sym,      // s: name ("x", "a_3", "\alpha")
  Const,    // s: "pi", "e", "i", "inf"
  Add,      // sum of kids
  Mul,      // product of kids
  Div,      // kids[0] / kids[1]
  Pow,      // kids[0] ^ kids[1]
  Neg,      // -kids[0]
  PM,       // kids[0] ± kids[1] (kids[0] may be Num 0 for a unary ±)
  Func,     // s: name; kids: args (log: arg, base)
  Percent,  // kids[0] %
  Fact,     // kids[0] !
  Seq,      // open/close: "()", "[]", "(]", "[)", "{}" (set), "L" (bare list); kids: items
  Union,    // kids: intervals / sets
  Rel,      // kids: e0 .. en; ops: relation between consecutive kids ("=", "<", "<=", ">", ">=", "!=")
  Matrix,   // rows x cols, kids row-major
  Text,     // s: normalised text
};

struct Node;
using NP = std::shared_ptr<const Node>;

struct Node {
  K k;
  std::string s;
  bool dec = false;
  char open = 0, close = 0;
  int rows = 0, cols = 0;
  std::vector<std::string> ops;
  std::vector<NP> kids;
};

// Parse failure reasons that make a check ungradable rather than wrong.
enum class ParseStatus { ok, syntax, cap };

struct Parsed {
  NP root;                   // null unless status == ok
  ParseStatus status = ParseStatus::syntax;
  bool wordy = false;        // contained natural-language words (3+ letters, not functions or units)
  std::string error;
};

// Parses one answer (LaTeX or plain). Never throws.
Parsed parse_math(std::string_view s, const VerifyOptions& opt);

// Canonical plain-text form of a node (for logs and for the quick string check).
std::string to_string(const Node& n);

// Exact rational arithmetic on 128-bit integers; ok=false on overflow or anything inexact.
struct Rat {
  __int128 n = 0, d = 1;
  bool ok = false;
};

struct EvalBudget {
  int64_t left;
  bool exhausted = false;
  bool step() { if (--left < 0) { exhausted = true; return false; } return true; }
};

// Exact value of a closed-form rational expression (no symbols, no irrational functions).
Rat eval_exact(const Node& n, const VerifyOptions& opt, EvalBudget& b);

using Cx = std::complex<double>;
using Env = std::map<std::string, Cx>;
// Numeric value with free symbols from env (missing symbol: NaN).
Cx eval_num(const Node& n, const Env& env, EvalBudget& b);

void free_symbols(const Node& n, std::vector<std::string>& out);
bool has_decimal(const Node& n);
int count_nodes(const Node& n);

// GiNaC: normal(a - b) == 0 (under a global lock; bounded). nullopt when GiNaC cannot decide.
std::optional<bool> ginac_equal(const Node& a, const Node& b, const VerifyOptions& opt);

std::shared_ptr<Node> make(K k, std::string s = {}, std::vector<NP> kids = {});

}  // namespace rlvr::rewards::detail
