// verify(): gold and prediction extraction, then structural equivalence over the parsed trees: lists and
// sets without order, tuples and intervals with their ends, unions, matrices, equations (x = 5 against 5,
// or proportional a - b), inequalities (as relations or as intervals), text, and scalars (exact rationals,
// rounding when a decimal literal is involved, numeric at random points, GiNaC when numerics fail).
#include "rewards/verifier.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "rewards/extract.h"
#include "rewards/math_ast.h"

namespace rlvr::rewards {

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::correct: return "correct";
    case Verdict::wrong: return "wrong";
    case Verdict::ungradable: return "ungradable";
  }
  return "?";
}

namespace {

using namespace detail;

struct CapHit {};

// Squashed spelling for the quick "same text" check.
std::string squash(std::string_view s) {
  static const char* drop[] = {"\\left", "\\right", "\\!", "\\,", "\\;", "\\:", "\\displaystyle", "$", " ",
                               "\n", "\t", "\\ ", "\\mathrm", "\\text", "\\textbf", "\\mathbf", "{", "}"};
  std::string r(s);
  for (const char* d : drop) {
    size_t n = std::strlen(d), p;
    while ((p = r.find(d)) != std::string::npos) r.erase(p, n);
  }
  size_t p;
  while ((p = r.find("dfrac")) != std::string::npos) r.replace(p, 5, "frac");
  while ((p = r.find("tfrac")) != std::string::npos) r.replace(p, 5, "frac");
  while (!r.empty() && (r.back() == '.' || r.back() == '\\')) r.pop_back();
  for (auto& c : r) c = char(std::tolower((unsigned char)c));
  return r;
}

bool is_symbolish(const Node& n) {
  switch (n.k) {
    case K::Sym: return true;
    case K::Mul:
      for (auto& k : n.kids)
        if (!is_symbolish(*k)) return false;
      return true;
    case K::Func: return n.s == "abs" || n.s == "ratio";
    case K::Seq:
      if (n.open == 'L') return false;
      for (auto& k : n.kids)
        if (!is_symbolish(*k)) return false;
      return !n.kids.empty();
    default: return false;
  }
}

// lhs of "lhs = value" that names the value rather than constrains it: x, f(x), |AB|, NO/BO, (p, q), A:B.
bool is_name_like(const Node& n) {
  if (n.k == K::Add || n.k == K::Num || n.k == K::Neg || n.k == K::PM) return false;
  if (is_symbolish(n)) return true;
  if (n.k == K::Div) return is_symbolish(*n.kids[0]) && is_symbolish(*n.kids[1]);
  if (n.k == K::Mul) {  // f(x) parsed as f*x, 2 wouldn't reach here
    for (auto& k : n.kids)
      if (k->k == K::Num) return false;
    return true;
  }
  if (n.k == K::Func) return true;
  return false;
}

bool has_inf(const Node& n) {
  if (n.k == K::Const) return n.s == "inf";
  for (auto& k : n.kids)
    if (has_inf(*k)) return true;
  return false;
}

bool no_free(const Node& n) {
  std::vector<std::string> f;
  free_symbols(n, f);
  return f.empty();
}

bool all_eq(const Node& r) {
  for (auto& o : r.ops)
    if (o != "=") return false;
  return true;
}

// The value an equation chain stands for, when it is an assignment: "x = 5" -> 5, "a = b = 3" -> 3.
NP assignment_value(const NP& r) {
  if (r->k != K::Rel || !all_eq(*r)) return nullptr;
  if (r->ops.size() >= 2) return r->kids.back();
  if (no_free(*r->kids[0]) && no_free(*r->kids[1])) return r->kids.back();  // "1/2 = 10/9" computes
  if (is_name_like(*r->kids[0])) return r->kids.back();
  return nullptr;
}

std::shared_ptr<Node> seq(char open, char close, std::vector<NP> kids) {
  auto n = make(K::Seq, "", std::move(kids));
  n->open = open;
  n->close = close;
  return n;
}

// An inequality about one variable as an interval: a < x <= b -> (a, b]; x >= c -> [c, inf).
NP as_interval(const NP& r) {
  if (r->k != K::Rel) return nullptr;
  auto lt = [](const std::string& o) { return o == "<" || o == "<="; };
  auto gt = [](const std::string& o) { return o == ">" || o == ">="; };
  auto inf = [](int sign) -> NP {
    NP i = make(K::Const, "inf");
    return sign > 0 ? i : make(K::Neg, "", {i});
  };
  // a <= |z| <= b (a >= 0): [-b, -a] U [a, b]
  if (r->ops.size() == 2 && r->kids[1]->k == K::Func && r->kids[1]->s == "abs" && is_symbolish(*r->kids[1]->kids[0]) &&
      no_free(*r->kids[0]) && no_free(*r->kids[2]) && lt(r->ops[0]) && lt(r->ops[1])) {
    EvalBudget b{1000};
    Cx lo = eval_num(*r->kids[0], {}, b);
    if (!(lo.imag() == 0 && lo.real() >= 0)) return nullptr;
    bool lc = r->ops[0] == "<=", hc = r->ops[1] == "<=";
    NP a = r->kids[0], c = r->kids[2];
    if (lo.real() == 0 && lc) return seq('[', ']', {make(K::Neg, "", {c}), c});
    auto neg = seq(hc ? '[' : '(', lc ? ']' : ')', {make(K::Neg, "", {c}), make(K::Neg, "", {a})});
    auto pos = seq(lc ? '[' : '(', hc ? ']' : ')', {a, c});
    return make(K::Union, "", {neg, pos});
  }
  if (r->ops.size() == 2 && is_symbolish(*r->kids[1]) && no_free(*r->kids[0]) && no_free(*r->kids[2])) {
    const auto &o1 = r->ops[0], &o2 = r->ops[1];
    if (lt(o1) && lt(o2))
      return seq(o1 == "<" ? '(' : '[', o2 == "<" ? ')' : ']', {r->kids[0], r->kids[2]});
    if (gt(o1) && gt(o2))
      return seq(o2 == ">" ? '(' : '[', o1 == ">" ? ')' : ']', {r->kids[2], r->kids[0]});
    return nullptr;
  }
  if (r->ops.size() == 1) {
    std::string o = r->ops[0];
    NP var = r->kids[0], c = r->kids[1];
    if (!is_symbolish(*var) || !no_free(*c)) {
      std::swap(var, c);
      if (!is_symbolish(*var) || !no_free(*c)) return nullptr;
      if (o == "<") o = ">";
      else if (o == ">") o = "<";
      else if (o == "<=") o = ">=";
      else if (o == ">=") o = "<=";
    }
    if (o == ">") return seq('(', ')', {c, inf(1)});
    if (o == ">=") return seq('[', ')', {c, inf(1)});
    if (o == "<") return seq('(', ')', {inf(-1), c});
    if (o == "<=") return seq('(', ']', {inf(-1), c});
  }
  return nullptr;
}

// Sums, products and negations of matrices written out (\begin{pmatrix}..\end{pmatrix} + ...), as one
// matrix of entry expressions; anything else is returned unchanged.
NP reduce_matrix(const NP& n, int depth = 0) {
  if (depth > 8) return n;
  auto is_m = [](const NP& x) { return x->k == K::Matrix; };
  if (n->k == K::Neg) {
    NP m = reduce_matrix(n->kids[0], depth + 1);
    if (!is_m(m)) return n;
    auto r = std::make_shared<Node>(*m);
    for (auto& e : r->kids) e = make(K::Neg, "", {e});
    return r;
  }
  if (n->k != K::Add && n->k != K::Mul) return n;
  std::vector<NP> parts;
  bool any = false;
  for (auto& k : n->kids) {
    parts.push_back(reduce_matrix(k, depth + 1));
    any |= is_m(parts.back());
  }
  if (!any) return n;
  if (n->k == K::Add) {
    auto r = std::make_shared<Node>(*parts[0]);
    if (!is_m(parts[0])) return n;
    for (size_t i = 1; i < parts.size(); ++i) {
      if (!is_m(parts[i]) || parts[i]->rows != r->rows || parts[i]->cols != r->cols) return n;
      for (size_t e = 0; e < r->kids.size(); ++e) r->kids[e] = make(K::Add, "", {r->kids[e], parts[i]->kids[e]});
    }
    return r;
  }
  NP acc = parts[0];
  for (size_t i = 1; i < parts.size(); ++i) {
    NP x = parts[i];
    if (is_m(acc) && is_m(x)) {
      if (acc->cols != x->rows || acc->rows * x->cols > 100 || acc->cols > 10) return n;
      auto r = make(K::Matrix);
      r->rows = acc->rows;
      r->cols = x->cols;
      for (int a = 0; a < acc->rows; ++a)
        for (int c = 0; c < x->cols; ++c) {
          std::vector<NP> terms;
          for (int k = 0; k < acc->cols; ++k)
            terms.push_back(make(K::Mul, "", {acc->kids[a * acc->cols + k], x->kids[k * x->cols + c]}));
          r->kids.push_back(make(K::Add, "", std::move(terms)));
        }
      acc = r;
    } else if (is_m(acc) || is_m(x)) {
      NP m = is_m(acc) ? acc : x, sc = is_m(acc) ? x : acc;
      auto r = std::make_shared<Node>(*m);
      for (auto& e : r->kids) e = make(K::Mul, "", {sc, e});
      acc = r;
    } else {
      acc = make(K::Mul, "", {acc, x});
    }
  }
  return acc;
}

class Comparer {
 public:
  explicit Comparer(const VerifyOptions& opt) : opt_(opt), budget_{opt.max_work} {}

  bool eq(const NP& a, const NP& b, int depth = 0) {
    if (depth > opt_.max_depth) throw CapHit{};
    if (budget_.exhausted) throw CapHit{};
    // Single-item lists.
    if (a->k == K::Seq && a->open == 'L' && a->kids.size() == 1) return eq(a->kids[0], b, depth + 1);
    if (b->k == K::Seq && b->open == 'L' && b->kids.size() == 1) return eq(a, b->kids[0], depth + 1);
    if ((a->k == K::Add || a->k == K::Mul || a->k == K::Neg) && depth < 4) {
      NP m = reduce_matrix(a);
      if (m != a) return eq(m, b, depth + 1);
    }
    if ((b->k == K::Add || b->k == K::Mul || b->k == K::Neg) && depth < 4) {
      NP m = reduce_matrix(b);
      if (m != b) return eq(a, m, depth + 1);
    }
    if (a->k == K::Rel && b->k == K::Rel) return rel_eq(a, b, depth);
    if (a->k == K::Rel || b->k == K::Rel) {
      const NP& r = a->k == K::Rel ? a : b;
      const NP& o = a->k == K::Rel ? b : a;
      if (NP v = assignment_value(r)) return eq(v, o, depth + 1);
      // Math-Verify's asymmetry: without allow_set_relation a relation predicted for a set gold fails,
      // a set predicted for a relation gold is still compared.
      bool allowed = opt_.allow_set_relation || r == b;
      if (allowed && (o->k == K::Seq || o->k == K::Union))
        if (NP iv = as_interval(r)) return eq(iv, o, depth + 1);
      return false;
    }
    if (a->k == K::Text || b->k == K::Text) return text_eq(*a, *b);
    if (a->k == K::Seq && b->k == K::Seq) return seq_eq(*a, *b, depth);
    if (a->k == K::Union || b->k == K::Union) return union_eq(a, b, depth);
    if (a->k == K::Matrix || b->k == K::Matrix) return matrix_eq(*a, *b, depth);
    if (a->k == K::Seq || b->k == K::Seq) return false;
    return scalar_eq(*a, *b);
  }

  EvalBudget& budget() { return budget_; }

 private:
  static std::string text_of(const Node& n) {
    switch (n.k) {
      case K::Text: return n.s;
      case K::Sym: {
        std::string r;
        for (char c : n.s) r += char(std::tolower((unsigned char)c));
        return r;
      }
      case K::Const: return n.s == "i" || n.s == "e" ? n.s : "";
      case K::Mul: {
        std::string r;
        for (auto& k : n.kids) {
          std::string t = text_of(*k);
          if (t.empty()) return "";
          r += t;
        }
        return r;
      }
      default: return "";
    }
  }
  static std::string strip_parens(std::string t) {
    if (t.size() == 3 && t[0] == '(' && t[2] == ')') return t.substr(1, 1);
    return t;
  }
  bool text_eq(const Node& a, const Node& b) {
    std::string x = strip_parens(text_of(a)), y = strip_parens(text_of(b));
    return !x.empty() && x == y;
  }

  bool rel_eq(const NP& a, const NP& b, int depth) {
    if (all_eq(*a) && all_eq(*b)) {
      NP va = assignment_value(a), vb = assignment_value(b);
      if (va && vb) return eq(va, vb, depth + 1);
      // Genuine equations (or an assignment against an equation): a0 - an proportional to b0 - bn.
      return proportional(*a->kids.front(), *a->kids.back(), *b->kids.front(), *b->kids.back(), false);
    }
    if (a->ops.size() == 1 && b->ops.size() == 1) {
      auto norm = [](const Node& r, NP& lhs, NP& rhs, std::string& op) {
        op = r.ops[0];
        lhs = r.kids[0];
        rhs = r.kids[1];
        if (op == ">" || op == ">=") {
          std::swap(lhs, rhs);
          op = op == ">" ? "<" : "<=";
        }
      };
      NP al, ar, bl, br;
      std::string ao, bo;
      norm(*a, al, ar, ao);
      norm(*b, bl, br, bo);
      if (ao == bo && proportional(*al, *ar, *bl, *br, ao == "<" || ao == "<=")) return true;
    }
    NP ia = as_interval(a), ib = as_interval(b);
    if (ia && ib) return eq(ia, ib, depth + 1);
    if (a->ops == b->ops && a->kids.size() == b->kids.size()) {
      for (size_t i = 0; i < a->kids.size(); ++i)
        if (!eq(a->kids[i], b->kids[i], depth + 1)) return false;
      return true;
    }
    return false;
  }

  // (l1 - r1) = c * (l2 - r2) with a constant c (> 0 when `positive`).
  bool proportional(const Node& l1, const Node& r1, const Node& l2, const Node& r2, bool positive) {
    auto d1 = make(K::Add, "", {std::make_shared<Node>(l1), make(K::Neg, "", {std::make_shared<Node>(r1)})});
    auto d2 = make(K::Add, "", {std::make_shared<Node>(l2), make(K::Neg, "", {std::make_shared<Node>(r2)})});
    std::vector<std::string> syms;
    free_symbols(*d1, syms);
    free_symbols(*d2, syms);
    double ratio = NAN;
    int valid = 0;
    for (int p = 0; p < 4; ++p) {
      Env env = point(syms, p);
      Cx x = eval_num(*d1, env, budget_), y = eval_num(*d2, env, budget_);
      if (budget_.exhausted) throw CapHit{};
      if (!finite(x) || !finite(y)) continue;
      if (std::abs(x) < 1e-12 && std::abs(y) < 1e-12) { ++valid; continue; }
      if (std::abs(y) < 1e-12 || std::abs(x) < 1e-12) return false;
      Cx r = x / y;
      if (std::abs(r.imag()) > 1e-9 * std::abs(r)) return false;
      if (std::isnan(ratio)) ratio = r.real();
      else if (std::abs(r.real() - ratio) > 1e-8 * std::max(1.0, std::abs(ratio))) return false;
      ++valid;
    }
    if (valid < 2) return false;
    if (std::isnan(ratio)) return true;  // both identically zero
    return !positive || ratio > 0;
  }

  bool seq_eq(const Node& a, const Node& b, int depth) {
    bool al = a.open == 'L', bl = b.open == 'L';
    bool aset = a.open == '{', bset = b.open == '{';
    if (al && bl) return opt_.ordered_lists ? ordered(a, b, depth) : unordered(a, b, depth);
    if ((al && bset) || (aset && bl) || (aset && bset)) return unordered(a, b, depth);
    if (aset || bset) return false;
    if (al || bl) return ordered(a, b, depth);  // a bare list against a tuple: same order
    if (a.open != b.open || a.close != b.close) return false;
    return ordered(a, b, depth);
  }
  bool ordered(const Node& a, const Node& b, int depth) {
    if (a.kids.size() != b.kids.size()) return false;
    for (size_t i = 0; i < a.kids.size(); ++i)
      if (!eq(a.kids[i], b.kids[i], depth + 1)) return false;
    return true;
  }
  bool unordered(const Node& a, const Node& b, int depth) {
    // Duplicates in one list count once ("1, 1, 2" ~ "{1, 2}") only for sets; lists compare as multisets.
    if (a.kids.size() > 64 || b.kids.size() > 64) throw CapHit{};
    // As sets: every item of one has an equal item in the other (repeats count once).
    auto covers = [&](const Node& x, const Node& y) {
      for (auto& u : x.kids) {
        bool found = false;
        for (size_t j = 0; j < y.kids.size() && !found; ++j) found = eq(u, y.kids[j], depth + 1);
        if (!found) return false;
      }
      return true;
    };
    return covers(a, b) && covers(b, a);
  }
  bool union_eq(const NP& a, const NP& b, int depth) {
    auto parts = [](const NP& n) {
      if (n->k == K::Union) return n->kids;
      return std::vector<NP>{n};
    };
    auto pa = parts(a), pb = parts(b);
    if (pa.size() != pb.size()) return false;
    std::vector<bool> used(pb.size(), false);
    for (auto& x : pa) {
      bool found = false;
      for (size_t j = 0; j < pb.size() && !found; ++j)
        if (!used[j] && eq(x, pb[j], depth + 1)) { used[j] = true; found = true; }
      if (!found) return false;
    }
    return true;
  }
  bool matrix_eq(const Node& a, const Node& b, int depth) {
    if (a.k == K::Matrix && b.k == K::Matrix) {
      if (a.rows != b.rows || a.cols != b.cols) return false;
      for (size_t i = 0; i < a.kids.size(); ++i)
        if (!eq(a.kids[i], b.kids[i], depth + 1)) return false;
      return true;
    }
    // A column or row vector against a tuple.
    const Node& m = a.k == K::Matrix ? a : b;
    const Node& t = a.k == K::Matrix ? b : a;
    if (t.k != K::Seq || (m.rows != 1 && m.cols != 1) || t.open == '{') return false;
    if (t.kids.size() != m.kids.size()) return false;
    for (size_t i = 0; i < m.kids.size(); ++i)
      if (!eq(m.kids[i], t.kids[i], depth + 1)) return false;
    return true;
  }

  static bool finite(Cx z) { return std::isfinite(z.real()) && std::isfinite(z.imag()); }

  Env point(const std::vector<std::string>& syms, int p) {
    Env env;
    for (size_t i = 0; i < syms.size(); ++i) {
      // Deterministic, distinct, irrational-looking points in (1.1, 2.9).
      double v = 1.1 + std::fmod(0.7071067811865476 * double(i + 1) * 1.618033988749895 + 0.37 * p +
                                     0.1234567 * double(p * p + 1) * double(i + 2),
                                 1.8);
      env[syms[i]] = Cx{v, 0};
    }
    return env;
  }

  bool rounded_equal(double x, double y) const {
    if (x == y) return true;
    if (std::abs(x - y) <= 1e-9 * std::max(std::abs(x), std::abs(y))) return true;
    double scale = std::pow(10.0, opt_.float_rounding);
    if (std::abs(x) * scale > 9e15 || std::abs(y) * scale > 9e15)
      return std::abs(x - y) <= 1e-12 * std::max(std::abs(x), std::abs(y));
    return std::round(x * scale) == std::round(y * scale);
  }
  bool close(Cx x, Cx y, bool dec) const {
    if (std::isinf(x.real()) || std::isinf(y.real())) return x == y;
    if (dec) return rounded_equal(x.real(), y.real()) && rounded_equal(x.imag(), y.imag());
    double scale = std::max({1e-300, std::abs(x), std::abs(y)});
    return std::abs(x - y) <= opt_.rel_tol * scale || std::abs(x - y) < 1e-13;
  }

  bool scalar_eq(const Node& a, const Node& b) {
    if (opt_.percent_flexible) {
      bool pa = a.k == K::Percent, pb = b.k == K::Percent;
      if (pa != pb) {
        const Node& p = pa ? a : b;
        const Node& o = pa ? b : a;
        if (scalar_eq_raw(*p.kids[0], o)) return true;
        return scalar_eq_raw(p, o);
      }
      if (pa && pb) return scalar_eq_raw(*a.kids[0], *b.kids[0]);
    }
    return scalar_eq_raw(a, b);
  }

  bool scalar_eq_raw(const Node& a, const Node& b) {
    bool dec = has_decimal(a) || has_decimal(b);
    Rat ra = eval_exact(a, opt_, budget_), rb = eval_exact(b, opt_, budget_);
    if (budget_.exhausted) throw CapHit{};
    if (ra.ok && rb.ok) {
      if (ra.n == rb.n && ra.d == rb.d) return true;
      if (!dec) return false;
      return rounded_equal(double(ra.n) / double(ra.d), double(rb.n) / double(rb.d));
    }
    // Very long integer literals (beyond 128 bits): compare their digits.
    if (a.k == K::Num && b.k == K::Num) {
      auto strip = [](const std::string& s) {
        size_t i = 0;
        while (i + 1 < s.size() && s[i] == '0' && s[i + 1] != '.') ++i;
        return s.substr(i);
      };
      if (strip(a.s) == strip(b.s)) return true;
      if (!a.dec && !b.dec) return false;  // two different integers, too long for exact arithmetic
    }
    std::vector<std::string> sa, sb;
    free_symbols(a, sa);
    free_symbols(b, sb);
    std::shared_ptr<Node> renamed;
    const Node* bp = &b;
    if (!opt_.strict && sa.size() == sb.size() && sa != sb && !sa.empty()) {
      renamed = rename(b, sb, sa);
      bp = renamed.get();
      sb = sa;
    }
    std::vector<std::string> syms = sa;
    for (auto& s : sb)
      if (std::find(syms.begin(), syms.end(), s) == syms.end()) syms.push_back(s);
    int npts = syms.empty() ? 1 : 4;
    int valid = 0;
    for (int p = 0; p < npts; ++p) {
      Env env = point(syms, p);
      Cx x = eval_num(a, env, budget_), y = eval_num(*bp, env, budget_);
      if (budget_.exhausted) throw CapHit{};
      bool fx = finite(x), fy = finite(y);
      if ((std::isinf(x.real()) || std::isinf(y.real()) || std::isinf(x.imag()) || std::isinf(y.imag())) &&
          !(has_inf(a) || has_inf(*bp)))
        throw CapHit{};  // overflow (10^{10^{10}}): not decidable within the caps
      if (std::isinf(x.real()) && std::isinf(y.real()) && x.imag() == 0 && y.imag() == 0) {
        if ((x.real() > 0) != (y.real() > 0)) return false;
        ++valid;
        continue;
      }
      if (fx != fy) {
        if (std::isnan(x.real()) || std::isnan(y.real())) continue;
        return false;
      }
      if (!fx) continue;
      if (!close(x, y, dec && syms.empty())) return false;
      ++valid;
    }
    if (valid == npts || (valid >= 2 && !syms.empty())) return true;
    // Numerics could not decide: GiNaC (at most a few calls per check); if it cannot decide either, the
    // check is undecidable within the caps.
    if (++ginac_calls_ > 4) throw CapHit{};
    if (auto g = ginac_equal(a, *bp, opt_)) return *g;
    throw CapHit{};
  }

  std::shared_ptr<Node> rename(const Node& n, const std::vector<std::string>& from,
                               const std::vector<std::string>& to) {
    auto c = std::make_shared<Node>(n);
    if (n.k == K::Sym) {
      auto it = std::find(from.begin(), from.end(), n.s);
      if (it != from.end()) c->s = to[it - from.begin()];
      return c;
    }
    for (auto& k : c->kids) k = rename(*k, from, to);
    return c;
  }

  const VerifyOptions& opt_;
  EvalBudget budget_;
  int ginac_calls_ = 0;
};

struct ParsedAnswer {
  std::string text;
  Parsed parsed;
};

// Strips the wrapping of a reference answer: $..$, \(..\), \[..\], a trailing period.
std::string unwrap_gold(std::string_view g) {
  std::string s(g);
  auto trim = [](std::string& x) {
    size_t a = x.find_first_not_of(" \t\n\r");
    size_t b = x.find_last_not_of(" \t\n\r");
    x = a == std::string::npos ? "" : x.substr(a, b - a + 1);
  };
  trim(s);
  while (!s.empty() && s.back() == '.') {
    s.pop_back();
    trim(s);
  }
  return s;
}

Parsed parse_answer(std::string_view s, const VerifyOptions& opt) {
  std::string norm = normalize_plain_number(s);
  // Thousands separators written in LaTeX: 14{,}916 and 11,\! 111 -> plain commas between digits.
  for (size_t p; (p = norm.find("{,}")) != std::string::npos;) norm.replace(p, 3, ",");
  for (size_t p = 0; (p = norm.find(",\\!", p)) != std::string::npos;) {
    size_t e = p + 3;
    while (e < norm.size() && norm[e] == ' ') ++e;
    norm.replace(p, e - p, ",");
    ++p;
  }
  return parse_math(norm, opt);
}

}  // namespace

std::optional<std::string> extract_answer(std::string_view completion, const VerifyOptions& opt) {
  try {
    if (completion.size() > opt.max_completion_chars) return std::nullopt;
    auto cands = pred_candidates(completion, opt);
    for (auto& c : cands) {
      if (c.text.size() > opt.max_answer_chars) continue;
      Parsed p = parse_answer(c.text, opt);
      if (p.status == ParseStatus::ok && (!p.wordy || c.anchored)) return c.text;
    }
    for (auto& c : cands)
      if (c.anchored && c.text.size() <= opt.max_answer_chars) return c.text;
  } catch (...) {
  }
  return std::nullopt;
}

std::string extract_gold(std::string_view gold, const VerifyOptions& opt) {
  try {
    if (gold.size() > opt.max_completion_chars) return "";
    if (auto b = last_boxed(gold.size() > opt.scan_tail_chars ? gold.substr(gold.size() - opt.scan_tail_chars) : gold))
      return *b;
    std::string s = unwrap_gold(gold);
    if (s.size() <= opt.max_answer_chars) {
      Parsed p = parse_answer(s, opt);
      if (p.status == ParseStatus::ok && !p.wordy) return s;
    }
    // A sentence ("answer is 0.6666667"): extract from it like from a completion.
    if (s.find(' ') != std::string::npos)
      if (auto a = extract_answer(gold, opt)) return *a;
    return s;
  } catch (...) {
    return "";
  }
}

Verdict compare_answers(std::string_view pred, std::string_view gold, const VerifyOptions& opt,
                        std::string* reason) {
  auto why = [&](const char* r) {
    if (reason) *reason = r;
  };
  try {
    if (pred.size() > opt.max_answer_chars || gold.size() > opt.max_answer_chars) {
      why("answer longer than max_answer_chars");
      return Verdict::ungradable;
    }
    Parsed g = parse_answer(gold, opt);
    Parsed p = parse_answer(pred, opt);
    if (g.status == ParseStatus::cap || p.status == ParseStatus::cap) {
      why(g.status == ParseStatus::cap ? "gold reached a cap" : "prediction reached a cap");
      return Verdict::ungradable;
    }
    if (!gold.empty() && squash(pred) == squash(gold) && !squash(gold).empty()) {
      why("same text");
      return Verdict::correct;
    }
    if (g.status != ParseStatus::ok) {
      why(g.status == ParseStatus::cap ? "gold reached a cap" : "gold does not parse");
      return Verdict::ungradable;
    }
    if (p.status != ParseStatus::ok) {
      why("prediction does not parse");
      return Verdict::wrong;
    }
    Comparer cmp(opt);
    bool e = cmp.eq(p.root, g.root);
    why(e ? "equivalent" : "not equivalent");
    return e ? Verdict::correct : Verdict::wrong;
  } catch (const CapHit&) {
    why("comparison reached the work cap");
    return Verdict::ungradable;
  } catch (...) {
    why("internal error");
    return Verdict::ungradable;
  }
}

bool answers_equivalent(std::string_view a, std::string_view b, const VerifyOptions& opt) {
  return compare_answers(a, b, opt) == Verdict::correct;
}

VerifyResult verify(std::string_view completion, std::string_view gold, const VerifyOptions& opt) {
  VerifyResult r;
  try {
    if (completion.size() > opt.max_completion_chars) {
      r.reason = "completion longer than max_completion_chars";
      return r;
    }
    if (gold.size() > opt.max_answer_chars * 8 && gold.size() > opt.scan_tail_chars) {
      r.reason = "gold too long";
      return r;
    }
    // A completion cut off inside its final \boxed{...} has no final answer: the lenient fallbacks below would
    // read one out of the cut text (a number inside the box, or before it) and could grade it correct.
    if (opt.latex && opt.boxed && final_box_unclosed(completion)) {
      r.reason = "the final \\boxed{ is never closed";
      return r;
    }
    // Only the tail of a long completion is searched; a fallback (last number, whole text) read out of a cut
    // text may come from the middle of an answer that starts before the cut, so only anchored answers count.
    const bool cut = completion.size() > opt.scan_tail_chars;
    // Multiple-choice letters.
    std::optional<char> gl;
    if (opt.letters == 1) gl = extract_letter(gold, true);
    else if (opt.letters == -1) gl = gold_letter(gold);
    if (gl) {
      r.gold_extracted = std::string(1, *gl);
      std::optional<char> pl;
      if (opt.letters == 1) pl = extract_letter(completion, false);
      else {
        std::string_view c = completion;
        // A boxed answer decides: a boxed letter is the choice, a boxed expression is compared as math.
        if (auto b = last_boxed(c)) pl = gold_letter(*b);
        else pl = extract_letter(c, false);
      }
      if (pl) {
        r.pred_extracted = std::string(1, *pl);
        r.verdict = *pl == *gl ? Verdict::correct : Verdict::wrong;
        r.reason = "letter";
        return r;
      }
      if (opt.letters == 1) {
        r.reason = "no letter in the completion";
        return r;
      }
    }
    r.gold_extracted = extract_gold(gold, opt);
    if (r.gold_extracted.empty()) {
      r.reason = "empty gold";
      return r;
    }
    Parsed g = parse_answer(r.gold_extracted, opt);
    if (g.status == ParseStatus::cap) {
      r.reason = "gold reached a cap";
      return r;
    }
    // Anchored candidates first (fast path); the trailing fallbacks only when none is usable.
    std::vector<Candidate> cands;
    const Candidate* chosen = nullptr;
    for (int pass = 0; pass < 2 && !chosen; ++pass) {
    cands = pred_candidates(completion, opt, pass == 1);
    // The first candidate that parses (anchored ones may be wordy text answers).
    for (auto& c : cands) {
      if (!c.anchored && (cut || c.text.size() > opt.max_answer_chars)) continue;
      Parsed p = parse_answer(c.text, opt);
      if (p.status == ParseStatus::cap && c.anchored) {  // the committed answer is beyond the caps
        r.pred_extracted = c.text.substr(0, 200);
        r.reason = "extracted answer reached a cap: " + p.error;
        return r;
      }
      bool text_gold = g.status == ParseStatus::ok && (g.wordy || g.root->k == K::Text);
      if (p.status == ParseStatus::ok && (!p.wordy || c.anchored || text_gold)) { chosen = &c; break; }
      if (c.anchored && squash(c.text) == squash(r.gold_extracted)) { chosen = &c; break; }
    }
    if (!chosen && pass == 1)
      for (auto& c : cands)
        if (c.anchored && c.text.size() <= opt.max_answer_chars) { chosen = &c; break; }
    }
    if (!chosen) {
      r.reason = cands.empty() ? "nothing extracted" : "extracted answer too long or unparseable";
      if (!cands.empty() && cands[0].text.size() > opt.max_answer_chars) r.reason = "extracted answer too long";
      return r;
    }
    r.pred_extracted = chosen->text;
    r.verdict = compare_answers(r.pred_extracted, r.gold_extracted, opt, &r.reason);
    // An answer-is segment that is a sentence: retry with its last number.
    if (r.verdict != Verdict::correct && std::strcmp(chosen->source, "answer_is") == 0) {
      Parsed p = parse_answer(chosen->text, opt);
      if (p.status != ParseStatus::ok || p.wordy) {
        if (auto n = last_number(chosen->text)) {
          Verdict v = compare_answers(*n, r.gold_extracted, opt, &r.reason);
          if (v != Verdict::ungradable) {
            r.verdict = v;
            r.pred_extracted = *n;
          }
        }
      }
    }
    if (r.verdict == Verdict::ungradable && g.status != ParseStatus::ok && r.reason == "gold does not parse") {
      // Gold is free text that did not parse: plain text comparison decides.
      r.verdict = squash(r.pred_extracted) == squash(r.gold_extracted) ? Verdict::correct : Verdict::ungradable;
    }
  } catch (...) {
    r.verdict = Verdict::ungradable;
    r.reason = "internal error";
  }
  return r;
}

}  // namespace rlvr::rewards
