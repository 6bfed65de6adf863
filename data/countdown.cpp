// Countdown checker (bounded recursive descent over exact rationals) and solver (see countdown.h).
#include "data/countdown.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

namespace rlvr::data {

const char* to_string(CountdownStatus s) {
  switch (s) {
    case CountdownStatus::correct: return "correct";
    case CountdownStatus::wrong_value: return "wrong_value";
    case CountdownStatus::bad_numbers: return "bad_numbers";
    case CountdownStatus::invalid: return "invalid";
  }
  return "?";
}

namespace {

struct Token {
  char kind;      // 'n' number, + - * / ( ) =, 'e' end
  int64_t value;  // for 'n'
};

// Lexes into tokens; returns an error message or "".
std::string lex(std::string_view s, std::vector<Token>& out) {
  static const std::pair<std::string_view, char> kWords[] = {
      {"\\times", '*'}, {"\\cdot", '*'}, {"\\div", '/'}, {"\\left", ' '}, {"\\right", ' '},
      {"\xC3\x97", '*'}, {"\xC3\xB7", '/'}, {"\xE2\x88\x92", '-'}, {"\xC2\xB7", '*'}};
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      ++i;
      continue;
    }
    if (c >= '0' && c <= '9') {
      size_t j = i;
      int64_t v = 0;
      while (j < s.size() && s[j] >= '0' && s[j] <= '9') {
        if (j - i >= 18) return "number literal too long";
        v = v * 10 + (s[j] - '0');
        ++j;
      }
      if (j < s.size() && s[j] == '.') return "decimal numbers are not allowed";
      out.push_back({'n', v});
      i = j;
      continue;
    }
    if (std::string_view("+-*/()=").find(c) != std::string_view::npos) {
      out.push_back({c, 0});
      ++i;
      continue;
    }
    bool matched = false;
    for (auto [w, k] : kWords) {
      if (s.substr(i, w.size()) == w) {
        if (k != ' ') out.push_back({k, 0});
        i += w.size();
        matched = true;
        break;
      }
    }
    if (!matched) return fmt::format("unexpected character '{}' at {}", c, i);
  }
  out.push_back({'e', 0});
  return "";
}

struct Parser {
  Parser(const std::vector<Token>& tokens, const CountdownLimits& limits) : t(tokens), lim(limits) {}
  const std::vector<Token>& t;
  const CountdownLimits& lim;
  size_t pos = 0;
  int depth = 0;
  std::vector<int64_t> literals;
  std::string syntax_error;  // first syntax error (stops parsing)
  std::string eval_error;    // first evaluation error (division by zero, overflow); parsing continues

  char peek() const { return t[pos].kind; }

  // Returns the value, or nullopt after an evaluation error (syntax errors are in syntax_error).
  std::optional<Rational> expr() {
    auto v = term();
    while (syntax_error.empty() && (peek() == '+' || peek() == '-')) {
      char op = t[pos++].kind;
      auto r = term();
      v = combine(v, r, op);
    }
    return v;
  }
  std::optional<Rational> term() {
    auto v = factor();
    while (syntax_error.empty() && (peek() == '*' || peek() == '/')) {
      char op = t[pos++].kind;
      auto r = factor();
      v = combine(v, r, op);
    }
    return v;
  }
  std::optional<Rational> factor() {
    if (!syntax_error.empty()) return std::nullopt;
    if (peek() == 'n') {
      if (static_cast<int>(literals.size()) >= lim.max_literals) {
        syntax_error = fmt::format("more than {} numbers", lim.max_literals);
        return std::nullopt;
      }
      literals.push_back(t[pos].value);
      return Rational{t[pos++].value, 1};
    }
    if (peek() == '(') {
      if (++depth > lim.max_depth) {
        syntax_error = fmt::format("parentheses nested deeper than {}", lim.max_depth);
        return std::nullopt;
      }
      ++pos;
      auto v = expr();
      if (!syntax_error.empty()) return std::nullopt;
      if (peek() != ')') {
        syntax_error = "missing ')'";
        return std::nullopt;
      }
      ++pos;
      --depth;
      return v;
    }
    if (peek() == '-' || peek() == '+')
      syntax_error = "unary signs are not allowed (use the numbers as given)";
    else if (peek() == 'e')
      syntax_error = "unexpected end of expression";
    else
      syntax_error = fmt::format("unexpected '{}'", peek());
    return std::nullopt;
  }
  std::optional<Rational> combine(std::optional<Rational> a, std::optional<Rational> b, char op) {
    if (!a || !b || !syntax_error.empty()) return std::nullopt;
    std::optional<Rational> r;
    switch (op) {
      case '+': r = add(*a, *b); break;
      case '-': r = sub(*a, *b); break;
      case '*': r = mul(*a, *b); break;
      case '/':
        if (b->num == 0) {
          if (eval_error.empty()) eval_error = "division by zero";
          return std::nullopt;
        }
        r = div(*a, *b);
        break;
    }
    if (!r && eval_error.empty()) eval_error = "arithmetic overflow";
    return r;
  }
};

}  // namespace

CountdownVerdict check_countdown(std::string_view expression, const std::vector<int64_t>& numbers, int64_t target,
                                 const CountdownLimits& limits) {
  CountdownVerdict v;
  if (expression.size() > limits.max_chars) {
    v.message = fmt::format("expression longer than {} characters", limits.max_chars);
    return v;
  }
  std::vector<Token> tokens;
  if (std::string err = lex(expression, tokens); !err.empty()) {
    v.message = err;
    return v;
  }
  Parser p(tokens, limits);
  auto value = p.expr();
  if (p.syntax_error.empty() && p.peek() == '=') {  // optional "= <integer>", not graded
    ++p.pos;
    if (p.peek() == 'n') ++p.pos;
    else p.syntax_error = "'=' must be followed by an integer";
  }
  if (p.syntax_error.empty() && p.peek() != 'e') p.syntax_error = fmt::format("unexpected '{}' after the expression", p.peek());
  if (!p.syntax_error.empty()) {
    v.message = p.syntax_error;
    return v;
  }
  std::map<int64_t, int> avail;
  for (int64_t n : numbers) ++avail[n];
  for (int64_t l : p.literals) {
    if (--avail[l] < 0) {
      v.status = CountdownStatus::bad_numbers;
      bool given = std::find(numbers.begin(), numbers.end(), l) != numbers.end();
      v.message = given ? fmt::format("uses {} more often than given in [{}]", l, fmt::join(numbers, ", "))
                        : fmt::format("uses {}, which is not among [{}]", l, fmt::join(numbers, ", "));
      return v;
    }
  }
  if (!value) {
    v.message = p.eval_error.empty() ? "could not evaluate" : p.eval_error;
    return v;
  }
  v.value = value;
  if (*value == Rational{target, 1}) {
    v.status = CountdownStatus::correct;
  } else {
    v.status = CountdownStatus::wrong_value;
    v.message = fmt::format("evaluates to {}, target {}", value->str(), target);
  }
  return v;
}

namespace {

struct Item {
  int64_t value;
  std::string expr;
  int prec;  // 3 atom, 2 product, 1 sum
};

struct Search {
  int64_t target;
  int64_t budget;
  std::vector<std::string> steps;
  std::optional<CountdownSolution> found;

  static std::string wrap(const Item& x, bool paren) { return paren ? "(" + x.expr + ")" : x.expr; }

  static Item make(const Item& a, const Item& b, char op, int64_t value) {
    switch (op) {
      case '+': return {value, a.expr + "+" + b.expr, 1};
      case '-': return {value, a.expr + "-" + wrap(b, b.prec <= 1), 1};
      case '*': return {value, wrap(a, a.prec <= 1) + "*" + wrap(b, b.prec <= 1), 2};
      default: return {value, wrap(a, a.prec <= 1) + "/" + wrap(b, b.prec <= 2), 2};
    }
  }

  // Combines pairs until `ops_left` operations are used; true when a solution was found.
  bool dfs(std::vector<Item>& items, int ops_left) {
    if (ops_left == 0 || budget <= 0) return false;
    for (size_t i = 0; i < items.size(); ++i) {
      for (size_t j = 0; j < items.size(); ++j) {
        if (i == j) continue;
        const Item& a = items[i];
        const Item& b = items[j];
        for (char op : {'+', '-', '*', '/'}) {
          // Commutative ops once per pair (larger first); positive integer results only.
          if ((op == '+' || op == '*') && (a.value < b.value || (a.value == b.value && i > j))) continue;
          int64_t v;
          if (op == '+') v = a.value + b.value;
          else if (op == '-') v = a.value - b.value;
          else if (op == '*') v = a.value * b.value;
          else v = (b.value != 0 && a.value % b.value == 0) ? a.value / b.value : 0;
          if (v <= 0 || v > 1000000) continue;
          if ((op == '*' || op == '/') && b.value == 1) continue;  // useless steps
          if (--budget <= 0) return false;
          Item c = make(a, b, op, v);
          steps.push_back(fmt::format("{}{}{}={}", a.value, op, b.value, v));
          if (ops_left == 1) {
            if (v == target) {
              found = CountdownSolution{c.expr, steps};
              return true;
            }
          } else {
            std::vector<Item> next;
            next.reserve(items.size() - 1);
            for (size_t k = 0; k < items.size(); ++k)
              if (k != i && k != j) next.push_back(items[k]);
            next.push_back(std::move(c));
            if (dfs(next, ops_left - 1)) return true;
          }
          steps.pop_back();
        }
      }
    }
    return false;
  }
};

}  // namespace

std::optional<CountdownSolution> solve_countdown(const std::vector<int64_t>& numbers, int64_t target,
                                                 int64_t node_budget) {
  Search s{target, node_budget, {}, std::nullopt};
  for (int ops = 1; ops < static_cast<int>(numbers.size()) && s.budget > 0; ++ops) {
    std::vector<Item> items;
    for (int64_t n : numbers) items.push_back({n, std::to_string(n), 3});
    if (s.dfs(items, ops)) return s.found;
  }
  return std::nullopt;
}

}  // namespace rlvr::data
